"""Shared fixtures: run the CLI as a user would (a subprocess), find the real ARC data."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_ARC = REPO.parent / "shared" / "data" / "arc"


def run_hrm(*args: str | os.PathLike, check: bool = False, timeout: float = 600,
            cwd: str | os.PathLike | None = None) -> subprocess.CompletedProcess:
    """`hrm ARGS...` in a subprocess (stdout/stderr captured, text, in `cwd`); `check` asserts exit 0."""
    # One torch thread per CLI subprocess (unless a test passes --threads): the suite runs a worker
    # per core (pytest-xdist), and threads beyond the cores stall each other (docs/training.md).
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "hrm", *map(str, args)], capture_output=True,
                            text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL, cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(f"hrm {' '.join(map(str, args))} exited {result.returncode}:\n{result.stderr}")
    return result


def wait_for_lines(path: Path, count: int, process: subprocess.Popen, timeout: float) -> None:
    """Poll until `path` holds at least `count` lines, the process exits, or `timeout` passes
    (the caller's assertions then say what went wrong)."""
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        time.sleep(0.05)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """A user error: non-zero exit, exactly one line on stderr, no traceback, naming `fragments`."""
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="session")
def shared_arc(tmp_path_factory) -> Path:
    """The real ARC data as plain Kaggle JSON files: the copy shipped in the package
    (hrm.builders.arc_io.packaged_data, xz-compressed), decompressed once per session, so that
    the real-data tests run on any clone (test_arc_real checks it against ../shared where present)."""
    import lzma

    from hrm.builders.arc_io import packaged_data

    folder = tmp_path_factory.mktemp("real_arc")
    with packaged_data() as packaged:
        for path in sorted(packaged.glob("*.json.xz")):
            (folder / path.name[:-len(".xz")]).write_bytes(lzma.decompress(path.read_bytes()))
    return folder


@pytest.fixture
def original_shared_arc() -> Path:
    if not (SHARED_ARC / "arc-agi_training_challenges.json").is_file():
        pytest.skip(f"the original ARC files are not at {SHARED_ARC} (only beside the project's own checkout)")
    return SHARED_ARC


@pytest.fixture
def single_thread(monkeypatch):
    """One torch thread here and in CLI subprocesses: identical float reductions in-process and
    in subprocesses, and no 2-thread stalls on a busy 2-core machine."""
    import torch

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
