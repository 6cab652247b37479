"""One `hrm` namespace when installed: a user's own train.py / eval.py cannot shadow ours, and a
regular (wheel) install works from any folder, with the packaged ARC data inside the wheel."""
from __future__ import annotations

import ast
import json
import lzma
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHADOWS = ("train", "eval", "builders", "augment", "common", "cli", "show", "models", "analysis")


def project_version() -> str:
    """The version as written in the source (pyproject.toml reads it from there)."""
    assert "version" in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dynamic"]
    tree = ast.parse((REPO / "hrm_root" / "__init__.py").read_text())
    (value,) = [node.value.value for node in tree.body if isinstance(node, ast.Assign)
                and [t.id for t in node.targets] == ["__version__"]]
    return value


def clean_env() -> dict[str, str]:
    """The environment of a user's shell: nothing points Python at the repository."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSAFEPATH")}
    env["OMP_NUM_THREADS"] = "1"
    return env


def run(args: list[str | os.PathLike], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=clean_env(), capture_output=True,
                            text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"{args} exited {result.returncode}:\n{result.stderr}"
    return result


def test_own_train_and_eval_files_do_not_shadow_hrm(tmp_path):
    for name in SHADOWS:
        (tmp_path / f"{name}.py").write_text(f"raise ImportError('the user\\'s own {name}.py was imported')\n")
    # The shadows are real: from this folder a bare `import train` picks the user's file ...
    shadowed = subprocess.run([sys.executable, "-c", "import train"], cwd=tmp_path, env=clean_env(),
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert shadowed.returncode != 0 and "the user's own train.py" in shadowed.stderr
    # ... and the library and `python -m hrm` are untouched by them.
    code = ("import hrm.train.loop, hrm.train.data, hrm.eval.run, hrm.eval.score, hrm.builders.dataset, "
            "hrm.augment.dihedral, hrm.common, hrm.cli.app, hrm.show.views\n"
            "from hrm.builders.dataset import open_dataset\n"
            "print(open_dataset.__module__)")
    assert run([sys.executable, "-c", code], tmp_path).stdout.strip() == "hrm.builders.dataset"
    version = run([sys.executable, "-m", "hrm", "--version"], tmp_path).stdout.strip()
    assert version.split()[-1] == project_version()


def packaged_arc_counts(wheel: Path) -> dict[str, tuple[int, int, int]]:
    """{subset: (tasks, train pairs, test pairs)} read straight from the ARC files in the wheel."""
    counts = {}
    with zipfile.ZipFile(wheel) as archive:
        for subset in ("training", "evaluation", "concept"):
            tasks = json.loads(lzma.decompress(archive.read(
                f"hrm/builders/arc_data/arc-agi_{subset}_challenges.json.xz")))
            counts[subset] = (len(tasks), sum(len(t["train"]) for t in tasks.values()),
                              sum(len(t["test"]) for t in tasks.values()))
    return counts


@pytest.mark.slow  # ~30-60 s: builds a wheel and an ARC dataset; CI runs it once (.ci/run)
def test_wheel_installs_one_namespace_and_builds_from_packaged_arc(tmp_path):
    source, wheels, venv, work = (tmp_path / name for name in ("source", "wheels", "venv", "work"))
    work.mkdir()
    # A copy of the source, so the build leaves nothing (build/, *.egg-info) in the repository
    # and a stale build/ there cannot slip old files into the wheel.
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", "data", "runs", ".pytest_cache"))
    # No network: build with this environment's setuptools, install without dependencies.
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", wheels, source], work)
    (wheel,) = wheels.glob("hrm-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}
    assert tops == {"hrm", f"hrm-{project_version()}.dist-info"}  # no top-level train/, eval/, ...

    run([sys.executable, "-m", "venv", "--without-pip", venv], work)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    # A fresh venv that sees this environment's dependencies (torch, numba, ...) as plain path
    # entries: .pth files in them (the editable install's finder) are not processed there.
    deps = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (site / "_deps.pth").write_text("\n".join(deps) + "\n")
    python, hrm = venv / "bin" / "python", venv / "bin" / "hrm"
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel], work)

    where = run([python, "-c", "import hrm.builders, hrm.show; print(hrm.builders.__file__)"], work).stdout
    assert Path(where.strip()).is_relative_to(venv), where  # the wheel's copy, not the repository

    out = tmp_path / "data" / "arc"
    run([hrm, "build-data", "arc", "--aug", "2", "--out", out], work)
    info = json.loads(run([hrm, "inspect", "--json", out], work).stdout)
    counts = packaged_arc_counts(wheel)
    versions = 1 + 2  # the original and two augmented versions of every task
    tasks = sum(n for n, _, _ in counts.values())
    assert info["task"] == "arc"
    assert info["attrs"]["arc_tasks"] == {subset: n for subset, (n, _, _) in counts.items()}
    train, test = info["splits"]["train"]["sets"]["all"], info["splits"]["test"]["sets"]["all"]
    assert (train["groups"], train["puzzles"]) == (tasks, tasks * versions)
    # evaluation's test pairs are the test split; every other pair trains
    assert (test["groups"], test["puzzles"]) == (counts["evaluation"][0], counts["evaluation"][0] * versions)
    assert test["examples"] == counts["evaluation"][2] * versions
    train_pairs = sum(t for _, t, _ in counts.values()) + counts["training"][2] + counts["concept"][2]
    assert train["examples"] == train_pairs * versions
    text = run([hrm, "inspect", out], work).stdout
    assert text.startswith(f"{out}: arc dataset")
