"""The first build after an install: how long numba takes to compile the build kernels on a cold
cache, against the same command once its cache is warm.

    python benchmarks/bench_kernel_compile.py [--rounds 3]

Each command is a tiny build (a few puzzles or mazes: the build itself takes well under a second),
run as a user runs it, in its own process: cold with an empty NUMBA_CACHE_DIR, then warm with the
cache the cold run left. Cold minus warm is what compiling costs a user once (and what every
xdist worker of the test suite pays for the kernels no other worker has cached yet). The commands
rotate within each round (A B C ... A B C) so that a drift of the machine's load hits them alike.
One JSON line per command: median and range of cold and warm CPU seconds (the steadier figure;
compiling runs on one core) and wall seconds, with the 1-minute load before and after.

    python benchmarks/bench_kernel_compile.py --against OTHER/.venv/bin/python

also runs every command with another checkout's interpreter (e.g. the previous main), in the same
rotation, and gives both figures and their ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from _common import timed_child

# The smallest builds that reach every kernel of their path (generator, augmentation, and the
# test split's hold-out check).
COMMANDS = {
    "sudoku 4x4, exact blanks (the ladder's path)": ["build-data", "sudoku", "--box", "2", "--blanks", "6",
                                                     "--train-size", "8", "--test-size", "4", "--aug", "2"],
    "sudoku 4x4, minimal and hardened (Sudoku-Extreme's path)": ["build-data", "sudoku", "--box", "2",
                                                                 "--train-size", "8", "--test-size", "4",
                                                                 "--aug", "2"],
    "maze 8x8, unique shortest path": ["build-data", "maze", "--size", "8", "--min-path", "8", "--unique-path",
                                       "--train-size", "4", "--test-size", "2", "--aug", "3"],
}


def timed(python: str, args: list[str], out: Path, cache: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of `PYTHON -m hrm ARGS --out OUT` with numba's cache in `cache`."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1"}
    return timed_child([python, "-m", "hrm", *args, "--out", str(out), "--force", "--quiet"], env)


def spread(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 2), "min": round(min(values), 2), "max": round(max(values), 2)}


def summary(runs: dict[str, list[tuple[float, float]]]) -> dict:
    cold_cpu, warm_cpu = [c for _, c in runs["cold"]], [c for _, c in runs["warm"]]
    return {"cold_cpu_s": spread(cold_cpu), "warm_cpu_s": spread(warm_cpu),
            "compile_cpu_s_median": round(statistics.median(c - w for c, w in zip(cold_cpu, warm_cpu)), 2),
            "cold_wall_s": spread([w for w, _ in runs["cold"]]), "warm_wall_s": spread([w for w, _ in runs["warm"]])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--against", help="another checkout's python (with its hrm installed), run in turn")
    args = parser.parse_args()
    pythons = {"this": sys.executable, **({"against": args.against} if args.against else {})}
    samples = {(name, label): {"cold": [], "warm": []} for name in COMMANDS for label in pythons}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        for round_index in range(args.rounds):
            for number, (name, command) in enumerate(COMMANDS.items()):
                for label, python in pythons.items():
                    cache = Path(scratch) / f"cache_{round_index}_{number}_{label}"  # empty: nothing compiled yet
                    out = Path(scratch) / f"data_{number}"
                    samples[name, label]["cold"].append(timed(python, command, out, cache))
                    samples[name, label]["warm"].append(timed(python, command, out, cache))
    load_after = os.getloadavg()[0]
    for name, command in COMMANDS.items():
        row = {"what": f"kernel compile: {name}", "command": "hrm " + " ".join(command), "rounds": args.rounds,
               **summary(samples[name, "this"])}
        if args.against:
            against = summary(samples[name, "against"])
            row["against"] = {"python": args.against, **against}
            row["cold_cpu_ratio"] = round(row["cold_cpu_s"]["median"] / against["cold_cpu_s"]["median"], 3)
        row["load_1min"] = [round(load_before, 2), round(load_after, 2)]
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
