"""Shared fixtures: run the CLI as a user would (in this process through its entry point, or in a
subprocess), find the real ARC data."""
from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_ARC = REPO.parent / "shared" / "data" / "arc"


def run_hrm(*args: str | os.PathLike, check: bool = False, timeout: float = 600,
            cwd: str | os.PathLike | None = None, process: bool = False) -> subprocess.CompletedProcess:
    """`hrm ARGS...` as a user runs it (stdout/stderr captured, text, in `cwd`); `check` asserts exit 0.

    By default it runs in this process through the real entry point (`hrm.cli.app.main`, what the
    `hrm` script calls), with what a fresh process would have restored around it: a command here
    costs its work, not an interpreter, torch and numba start-up (about 3 s each on the 2-core CI
    machine, over ~190 commands in the suite). `process=True` (or HRM_TEST_PROCESS=1 for the whole
    suite) runs `python -m hrm` in a subprocess instead, with `timeout`: for what only a process
    boundary shows (imports at start-up, a process's exit, its environment)."""
    if process or os.environ.get("HRM_TEST_PROCESS") == "1":
        result = _run_hrm_process(args, timeout, cwd)
    else:
        result = _run_hrm_here(args, cwd)
    if check and result.returncode != 0:
        raise AssertionError(f"hrm {' '.join(map(str, args))} exited {result.returncode}:\n{result.stderr}")
    return result


def _run_hrm_process(args: tuple, timeout: float, cwd) -> subprocess.CompletedProcess:
    # One torch thread per CLI subprocess (unless a test passes --threads): the suite runs a worker
    # per core (pytest-xdist), and threads beyond the cores stall each other (docs/training.md).
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "hrm", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL, cwd=cwd)


def _run_hrm_here(args: tuple, cwd) -> subprocess.CompletedProcess:
    """`hrm ARGS` in this process, as `_run_hrm_process` would run it: the same argv, one torch
    thread unless --threads says otherwise (what OMP_NUM_THREADS=1 gives a subprocess), warnings
    printed to the captured stderr (not collected by pytest), an unexpected exception as a
    traceback and exit 1; afterwards the process-wide state a command sets is put back (threads,
    --quiet, compiled graphs, the working directory)."""
    import torch

    from hrm.cli.app import main
    from hrm.common import distributed, set_quiet

    def show_warning(message, category, filename, lineno, file=None, line=None):
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    out_bytes, err_bytes = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(out_bytes, encoding="utf-8", write_through=True)
    err = io.TextIOWrapper(err_bytes, encoding="utf-8", write_through=True)
    argv, threads, default_threads = sys.argv, torch.get_num_threads(), distributed.TORCH_DEFAULT_THREADS
    sys.argv = ["hrm", *map(str, args)]
    distributed.TORCH_DEFAULT_THREADS = 1
    code = 0
    try:
        with contextlib.chdir(cwd or os.getcwd()), warnings.catch_warnings(), \
                contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            warnings.simplefilter("default")
            warnings.showwarning = show_warning
            try:
                main()
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
            except Exception:  # what a subprocess would print before exiting 1
                traceback.print_exc()
                code = 1
    finally:
        sys.argv, distributed.TORCH_DEFAULT_THREADS = argv, default_threads
        torch.set_num_threads(threads)
        set_quiet(False)
        if "torch._dynamo" in sys.modules:
            torch._dynamo.reset()
    out.flush(), err.flush()
    return subprocess.CompletedProcess([sys.executable, "-m", "hrm", *map(str, args)], code,
                                       out_bytes.getvalue().decode(), err_bytes.getvalue().decode())


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
