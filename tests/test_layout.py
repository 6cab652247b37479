"""The import graph keeps the floors of the house (SPEC 9), data flowing one way:
builders -> dataset -> train -> checkpoint -> eval, with the model in a room of its own.

    cli        the Typer app: parses, calls one library function, prints
    analysis   reading runs: curves, `hrm compare`, `hrm trace`
    train      config, loader, optimisers, losses, loop, checkpoints; its periodic evaluation is eval's
    eval       running a model over a split (one evaluation loop), inverse mapping, voting, scoring
    models     the architectures, their layers and registry, reading checkpoints
    show       drawing puzzles and charts          builders   generators, importers, the dataset format
    common, augment: the ground floor every package may stand on

Read from the source with `ast` (nothing is imported), so an import hidden in a function body
(the CLI's lazy imports, a TYPE_CHECKING block) counts too.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {"common": "hrm.common", "augment": "hrm.augment", "builders": "hrm.builders", "show": "hrm.show",
           "models": "hrm.models", "eval": "hrm.eval", "train": "hrm.train", "analysis": "hrm.analysis",
           "hrm_cli": "hrm.cli"}
PACKAGES = {"hrm", *FOLDERS.values()}

# What each package may import of the others (itself always). Anything else is a wrong-way arrow.
MAY_IMPORT = {
    "common": {"hrm.common"},
    "augment": {"hrm.common"},
    "builders": {"hrm.common", "hrm.augment"},
    "show": {"hrm.common", "hrm.augment", "hrm.builders.dataset"},
    "models": {"hrm.common"},
    "eval": {"hrm.common", "hrm.augment", "hrm.builders.dataset", "hrm.show", "hrm.models"},
    "train": {"hrm.common", "hrm.augment", "hrm.builders.dataset", "hrm.models", "hrm.eval"},
    "analysis": {"hrm.common", "hrm.augment", "hrm.builders.dataset", "hrm.show", "hrm.models", "hrm.eval",
                 "hrm.train"},
}


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


def wrong_way(folder: str, graph: dict[str, set[str]] | None = None) -> list[str]:
    """The imports of `folder`'s files (or of a given {file: modules}) that MAY_IMPORT forbids."""
    own = FOLDERS[folder]
    allowed = MAY_IMPORT[folder] | {own}
    wrong = []
    for name, modules in (imported_modules(folder) if graph is None else graph).items():
        for module in sorted(modules):
            if module in PACKAGES:  # `from hrm.builders import dataset`: its modules are counted one by one
                continue
            if not any(reaches({module}, a) for a in allowed):
                wrong.append(f"{folder}/{name} imports {module}")
    return wrong


def test_every_package_imports_only_the_floors_below_it():
    wrong = [line for folder in MAY_IMPORT for line in wrong_way(folder)]
    assert not wrong, "\n".join(wrong)


def test_the_model_room_knows_nothing_of_training_or_evaluation():
    """The architectures are read and reused alone (nanoGPT's model.py): no arrow from models/ to
    train/, eval/ or the analysis, nor to the dataset (a model sees tensors, not zarr)."""
    for name, modules in imported_modules("models").items():
        for package in ("hrm.train", "hrm.eval", "hrm.analysis", "hrm.builders", "hrm.show", "hrm.cli"):
            assert not reaches(modules, package), f"models/{name} imports {sorted(reaches(modules, package))}"


def test_hrm_eval_needs_no_part_of_train():
    """`hrm eval` loads a checkpoint and runs it through eval/ alone; the trainer calls eval's loop."""
    for name, modules in imported_modules("eval").items():
        assert not reaches(modules, "hrm.train"), f"eval/{name} imports {sorted(reaches(modules, 'hrm.train'))}"
    assert any(reaches(modules, "hrm.eval") for modules in imported_modules("train").values())


def test_no_circle_between_files():
    """No two modules import each other, directly or around a loop (lazy imports count)."""
    graph: dict[str, set[str]] = {}
    for folder, package in FOLDERS.items():
        for name, modules in imported_modules(folder).items():
            graph[f"{package}.{name[:-3]}"] = {m for m in modules if m != f"{package}.{name[:-3]}"}
    known = set(graph)
    edges = {node: {m for m in targets if m in known} for node, targets in graph.items()}
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                circles.append(path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not circles, " ; ".join(" -> ".join(c) for c in circles)


def test_the_reader_sees_every_package_folder():
    """A guard for the tests above: a folder they skip (renamed, emptied) would make them pass
    vacuously. Each folder has files, and the graph has the edges the flow needs."""
    graph = {folder: imported_modules(folder) for folder in FOLDERS}
    assert all(graph[folder] for folder in FOLDERS)
    assert "hrm.builders.dataset" in graph["train"]["data.py"]
    assert "hrm.augment.dihedral_kernels" in graph["eval"]["inverse.py"]
    assert "hrm.models.registry" in graph["eval"]["inference.py"]
    assert "hrm.eval.inference" in graph["train"]["loop.py"]
    assert wrong_way("models") == [] and "hrm.train.config" not in graph["models"]["registry.py"]
    # the checker itself catches a wrong-way arrow, including a package's module named in its import list
    assert wrong_way("eval", {"x.py": {"hrm.train", "hrm.train.loop"}}) == ["eval/x.py imports hrm.train.loop"]
    assert wrong_way("show", {"x.py": {"hrm.builders", "hrm.builders.sudoku"}}) == ["show/x.py imports hrm.builders.sudoku"]
