"""Sudoku generation speed at the default difficulty (SPEC 7), on all cores numba sees.

    python benchmarks/bench_sudoku_generate.py [--count 400] [--steps N] [--seed 0]

Prints JSON lines: hard puzzles (the default hill-climbing budget and easy mix) and, for
context, plain random minimal puzzles. Target: 1000 train + 1000 test in under 3 minutes on
2 cores, with a mean rating >= 22.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import peak_rss_mb  # noqa: E402

from hrm.builders.sudoku import DEFAULT_EASY_FRACTION, DEFAULT_SEARCH_STEPS, generate_puzzles  # noqa: E402


def measure(what: str, count: int, seed: int, steps: int, easy_fraction: float) -> dict:
    list(generate_puzzles(4, seed=seed + 99, search_steps=2))  # load/compile the kernels
    start, start_cpu = time.perf_counter(), time.process_time()
    ratings = np.concatenate([r for _, _, r in generate_puzzles(count, seed=seed, search_steps=steps,
                                                                easy_fraction=easy_fraction)])
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    return {"what": what, "size": count, "seconds": round(seconds, 3),
            "items_per_s": round(count / seconds, 2), "cpu_seconds": round(cpu_seconds, 3),
            # puzzles per busy core-second: what idle cores reach, whatever the machine's load
            "items_per_cpu_s": round(count / cpu_seconds, 2), "peak_rss_mb": round(peak_rss_mb(), 1),
            "threads": numba.get_num_threads(), "search_steps": steps, "easy_fraction": easy_fraction,
            "rating_mean": round(float(ratings.mean()), 2), "rating_median": float(np.median(ratings)),
            "share_rating_ge_20": round(float((ratings >= 20).mean()), 3),
            "seconds_for_2000_extrapolated": round(2000 * seconds / count, 1),
            "seconds_for_2000_on_idle_cores": round(2000 * cpu_seconds / count / numba.get_num_threads(), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--steps", type=int, default=DEFAULT_SEARCH_STEPS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(measure("sudoku generate (default difficulty)", args.count, args.seed, args.steps,
                             DEFAULT_EASY_FRACTION)), flush=True)
    print(json.dumps(measure("sudoku generate (random minimal, no search)", args.count * 10, args.seed, 0,
                             1.0)), flush=True)


if __name__ == "__main__":
    main()
