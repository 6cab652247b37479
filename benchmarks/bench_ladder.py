"""The learning ladder's calibration (issue 14): train a rung's preset (examples/ladder_RUNG.yaml on
the data of `examples/ladder.sh data RUNG`) to the end for several seeds and report the final
held-out exact accuracy of each, then its mean and spread, with the wall time of each run and the
machine's load beside it. A rung is calibrated when the mean lies in 30-80% and a run takes at most
20 minutes on the 2-core CPU.

One JSON line per run, then one summary line per rung:

    python benchmarks/bench_ladder.py [--rung sudoku4|maze6|sudoku9] [--seeds 0 1 2] [--parallel 2] [--out DIR]

--parallel N trains N seeds at a time, each on one CPU thread (`threads=1`: the trainer's default,
the cores idle at start-up, would give runs started together every core each); the wall times then
include the sharing of the cores, as `load` says.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import emit  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def train_seed(rung: str, seed: int, out: Path, one_thread: bool = False) -> dict:
    start, load_before = time.perf_counter(), load_average()
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    result = subprocess.run(["bash", str(REPO / "examples" / "ladder.sh"), "train", rung, str(out / f"seed{seed}"),
                             f"seed={seed}", *(["threads=1"] if one_thread else [])],
                            capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"error: the {rung} run of seed {seed} failed: {result.stderr.strip()[-400:]}")
    final = json.loads(result.stdout.strip().splitlines()[-1])
    return {"bench": "ladder", "rung": rung, "seed": seed, "exact_accuracy": final["exact_accuracy"],
            "accuracy": final["accuracy"], "steps": final["step"],
            "wall_s": round(time.perf_counter() - start, 1), "load_before": load_before, "load_after": load_average()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rung", default="sudoku4")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        with ThreadPoolExecutor(max_workers=args.parallel) as pool:
            rows = list(pool.map(lambda seed: train_seed(args.rung, seed, out, args.parallel > 1), args.seeds))
    for row in rows:
        emit(**row)
    exact = [row["exact_accuracy"] for row in rows]
    emit(bench="ladder_summary", rung=args.rung, seeds=args.seeds, parallel=args.parallel,
         exact_mean=round(statistics.mean(exact), 4),
         exact_std=round(statistics.stdev(exact), 4) if len(exact) > 1 else 0.0,
         exact_min=min(exact), exact_max=max(exact), wall_s_max=max(row["wall_s"] for row in rows),
         in_range=0.3 <= statistics.mean(exact) <= 0.8)


if __name__ == "__main__":
    main()
