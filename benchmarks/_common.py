"""What every benchmark script shares: peak memory, the one-JSON-line-per-measurement output, and
a small trained model to measure with."""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_child(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child process) of one run of `command`, output discarded."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   stdin=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def emit(**row) -> None:
    """Print one measurement as a JSON line, with the peak RSS at the time."""
    print(json.dumps({**row, "peak_rss_mb": round(peak_rss_mb(), 1)}), flush=True)


def smoke_model(root: Path, build_args: list[str], train_args: list[str]) -> tuple[Path, Path]:
    """(run folder, dataset): 4x4 sudoku (`hrm build-data sudoku --box 2 --seed 0` + build_args)
    and the smoke preset trained on it (examples/smoke.yaml + train_args), in subprocesses of one
    torch thread, under `root`."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    hrm = [sys.executable, "-m", "hrm"]
    data, run = root / "data", root / "run"
    subprocess.run([*hrm, "build-data", "sudoku", "--box", "2", "--out", str(data), "--seed", "0", "--quiet",
                    *build_args], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run([*hrm, "train", "--data", str(data), "--out", str(run), "--config",
                    str(REPO / "examples" / "smoke.yaml"), "--device", "cpu", "--quiet", *train_args],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    return run, data
