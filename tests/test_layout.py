"""The import graph keeps the one-way flow (SPEC 9): builders -> dataset -> train -> checkpoint ->
eval, on a ground floor (`hrm.common`, `hrm.augment`) that every package may stand on.

Read from the source with `ast` (nothing is imported), so an import hidden in a function body
(the CLI's lazy imports, a TYPE_CHECKING block) counts too.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {"common": "hrm.common", "augment": "hrm.augment", "builders": "hrm.builders",
           "show": "hrm.show", "train": "hrm.train", "eval": "hrm.eval", "hrm_cli": "hrm.cli"}
PACKAGES = {"hrm", *FOLDERS.values()}


def imported_modules(folder: str) -> dict[str, set[str]]:
    """{file name: every `hrm.*` module it imports} for the files of one package folder."""
    out: dict[str, set[str]] = {}
    for path in sorted((REPO / folder).glob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hrm"):
                names.add(node.module)
                if node.module in PACKAGES:  # `from hrm.builders import maze_kernels` imports a module
                    names |= {f"{node.module}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names if alias.name.startswith("hrm")}
        out[path.name] = names
    return out


def reaches(names: set[str], package: str) -> set[str]:
    return {n for n in names if n == package or n.startswith(package + ".")}


def test_only_builders_and_the_cli_import_builders_beyond_the_dataset_format():
    for folder, package in FOLDERS.items():
        if package in ("hrm.builders", "hrm.cli"):  # the builders themselves; the CLI runs them
            continue
        for name, modules in imported_modules(folder).items():
            into_builders = reaches(modules, "hrm.builders") - {"hrm.builders", "hrm.builders.dataset"}
            assert not into_builders, f"{folder}/{name} imports {sorted(into_builders)}"


def test_the_ground_floor_stands_on_nothing_above_it():
    allowed = {"common": {"hrm.common"}, "augment": {"hrm.common", "hrm.augment"}}
    for folder, packages in allowed.items():
        for name, modules in imported_modules(folder).items():
            above = {m for m in modules if not any(reaches({m}, p) for p in packages)}
            assert not above, f"{folder}/{name} imports {sorted(above)}"


def test_data_flows_one_way():
    """builders never import show/train/eval, train never imports eval, show never imports
    train/eval (eval may draw with show; train draws its curves with show)."""
    forbidden = {"builders": ("hrm.show", "hrm.train", "hrm.eval", "hrm.cli"),
                 "show": ("hrm.train", "hrm.eval", "hrm.cli"),
                 "train": ("hrm.eval", "hrm.cli"),
                 "eval": ("hrm.cli",)}
    for folder, packages in forbidden.items():
        for name, modules in imported_modules(folder).items():
            wrong = set().union(*(reaches(modules, p) for p in packages))
            assert not wrong, f"{folder}/{name} imports {sorted(wrong)}"


def test_the_reader_sees_every_package_folder():
    """A guard for the tests above: a folder they skip (renamed, emptied) would make them pass
    vacuously. Each folder has files, and the graph has the edges the flow needs."""
    graph = {folder: imported_modules(folder) for folder in FOLDERS}
    assert all(graph[folder] for folder in FOLDERS)
    assert "hrm.builders.dataset" in graph["train"]["data.py"]
    assert "hrm.augment.dihedral_kernels" in graph["eval"]["inverse.py"]
    assert "hrm.show.render_png" in graph["train"]["curves.py"]
