"""Start-up of the command line: wall and CPU time of `hrm --version` and `hrm --help` (and one
subcommand's help), and what they import (`python -X importtime`).

    python benchmarks/bench_startup.py [--runs 15]

The commands run in turn (A B C A B C ...) so that a drift of the machine's load hits them all
alike; `python -c pass` runs in the same rotation as the floor every Python process pays. Each
line gives min / median / max over the runs; the target is a median wall time < 0.3 s on the
2-core machine. The importtime line lists the largest top-level imports and which heavy
libraries were loaded (none should be: commands import what they need when they run).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

from _common import timed_child

TARGET_S = 0.3
HEAVY = ("numba", "zarr", "pyarrow", "torch", "PIL", "yaml", "tqdm", "rich", "pydantic", "numpy")


def hrm_command() -> list[str]:
    """The installed `hrm` script beside this interpreter (what a user types), else `python -m hrm`."""
    script = Path(sys.executable).parent / "hrm"
    return [str(script)] if script.exists() else [sys.executable, "-m", "hrm"]


def import_profile(args: list[str], env: dict[str, str]) -> dict:
    """Top-level imports by cumulative time, and the heavy libraries loaded at all."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "hrm", *args], env=env,
                            capture_output=True, text=True, stdin=subprocess.DEVNULL, check=True)
    rows = re.findall(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$", result.stderr, re.MULTILINE)
    top = [(int(cumulative), name) for _, cumulative, indent, name in rows if len(indent) == 1]
    modules = {name for *_, name in rows}
    return {"import_ms_total": round(sum(c for c, _ in top) / 1000, 1),
            "largest_imports_ms": {name: round(c / 1000, 1) for c, name in sorted(top, reverse=True)[:6]},
            "heavy_loaded": [name for name in HEAVY if name in modules]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}
    hrm = hrm_command()
    cases = {"python -c pass": [sys.executable, "-c", "pass"],
             "hrm --version": [*hrm, "--version"],
             "hrm --help": [*hrm, "--help"],
             "hrm build-data sudoku --help": [*hrm, "build-data", "sudoku", "--help"]}
    for command in cases.values():  # warm the OS file cache and Python's bytecode caches
        timed_child(command, env)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    load_before = os.getloadavg()[0]
    for _ in range(args.runs):
        for name, command in cases.items():
            samples[name].append(timed_child(command, env))
    load_after = os.getloadavg()[0]
    for name, runs in samples.items():
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        row = {"what": f"start-up: {name}", "runs": len(runs), "wall_s_min": round(min(walls), 3), "wall_s_median": round(statistics.median(walls), 3),
               "wall_s_max": round(max(walls), 3), "cpu_s_median": round(statistics.median(cpus), 3),
               "load_1min": [round(load_before, 2), round(load_after, 2)]}
        if name != "python -c pass":
            row["target_wall_s"] = TARGET_S
            row["met"] = row["wall_s_median"] < TARGET_S
            row.update(import_profile(cases[name][len(hrm):], env))
        print(json.dumps(row), flush=True)
    print(json.dumps({"what": "start-up: machine", "cores": os.cpu_count(), "hrm": " ".join(hrm)}))


if __name__ == "__main__":
    main()
