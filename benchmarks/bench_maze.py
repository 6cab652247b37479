"""Maze-Hard generation and build speed. One JSON line per measurement on stdout.

    python benchmarks/bench_maze.py [--mazes 4000] [--skip-build]

- generate: accepted 30x30 mazes/s with min-path 110 (the SPEC 7 target is >= 500/s on 2 cores),
  on all numba threads and on one, against a baseline measured in the same run: plain random
  walls with the goal at the farthest reachable cell, kept when the path is long enough (the
  rejection sampler the constructive generator replaces).
- build: `build_maze` 1000 + 1000 (the paper's Maze-Hard size), without and with --aug.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import emit  # noqa: E402

from hrm.augment import maze_paths  # noqa: E402
from hrm.builders import maze_kernels as kernels  # noqa: E402
from hrm.builders.maze import build_maze, generate_mazes, stream_base  # noqa: E402

SIZE, MIN_PATH, DENSITY = 30, 110, 0.25
BASELINE_DENSITY = 0.38  # the best wall density for the rejection sampler (0.3-0.45 swept: ~0.13% accepted)


@njit(parallel=True)
def _rejection_sampler(base, draws, side, min_path, density, accepted):
    """Baseline: one random wall draw per index, goal at the farthest cell from a random start."""
    cells = side * side
    for i in prange(draws):
        state = np.empty(1, np.uint64)
        state[0] = kernels.maze_seed(base, i)
        open_cells = np.empty(cells, np.uint8)
        dist = np.empty(cells, np.int32)
        order = np.empty(cells, np.int32)
        n_open = kernels._random_walls(state, open_cells, density)
        accepted[i] = 0
        if n_open < 2:
            continue
        start = kernels._nth_open(open_cells, kernels._below(state, n_open))
        reached = maze_paths.bfs(open_cells, side, start, dist, order)
        accepted[i] = dist[order[reached - 1]] >= min_path


def baseline_rate(draws: int) -> tuple[float, int]:
    accepted = np.zeros(draws, np.uint8)
    _rejection_sampler(stream_base(1, 0), 64, SIZE, MIN_PATH, BASELINE_DENSITY, accepted[:64])  # compile
    start = time.perf_counter()
    _rejection_sampler(stream_base(0, 0), draws, SIZE, MIN_PATH, BASELINE_DENSITY, accepted)
    seconds = time.perf_counter() - start
    return seconds, int(accepted.sum())


def generate(count: int, threads: int, unique: bool) -> tuple[float, float]:
    """(wall seconds, CPU seconds of all threads) to generate `count` accepted mazes."""
    numba.set_num_threads(threads)
    try:
        start, cpu = time.perf_counter(), time.process_time()
        produced = sum(len(batch) for batch in generate_mazes(
            count, size=SIZE, min_path=MIN_PATH, seed=0, stream=0, unique_path=unique, wall_density=DENSITY))
        assert produced == count
        return time.perf_counter() - start, time.process_time() - cpu
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mazes", type=int, default=4000, help="mazes per generation measurement")
    parser.add_argument("--baseline-draws", type=int, default=200_000)
    parser.add_argument("--skip-build", action="store_true")
    args = parser.parse_args()
    cores = numba.config.NUMBA_NUM_THREADS

    list(generate_mazes(8, size=SIZE, min_path=MIN_PATH, seed=1, stream=0))  # compile / load the cache
    list(generate_mazes(8, size=SIZE, min_path=MIN_PATH, seed=1, stream=0, unique_path=True))

    base_seconds, base_accepted = baseline_rate(args.baseline_draws)  # wall seconds, all threads
    base_rate = base_accepted / base_seconds
    emit(what="maze_generate_baseline_rejection", size=f"{SIZE}x{SIZE} min_path {MIN_PATH}, {args.baseline_draws} draws",
         threads=cores, wall_density=BASELINE_DENSITY, seconds=round(base_seconds, 3), items_per_s=round(base_rate, 1),
         acceptance=base_accepted / args.baseline_draws)

    label = f"{SIZE}x{SIZE} min_path {MIN_PATH}, {args.mazes} mazes"
    # CPU seconds make the figures readable on a shared machine: items_per_cpu_s x cores is
    # the rate 2 idle cores would reach.
    one, one_cpu = generate(args.mazes, 1, False)
    emit(what="maze_generate", size=label, threads=1, seconds=round(one, 3), items_per_s=round(args.mazes / one, 1),
         items_per_cpu_s=round(args.mazes / one_cpu, 1))
    both, both_cpu = generate(args.mazes, cores, False)
    emit(what="maze_generate", size=label, threads=cores, seconds=round(both, 3),
         items_per_s=round(args.mazes / both, 1), items_per_cpu_s=round(args.mazes / both_cpu, 1),
         speedup_vs_1_thread=round(one / both, 2),
         speedup_vs_baseline=round(args.mazes / both / max(base_rate, 1e-9), 1), target_items_per_s=500)
    unique, unique_cpu = generate(args.mazes, cores, True)
    emit(what="maze_generate_unique_path", size=label, threads=cores, seconds=round(unique, 3),
         items_per_s=round(args.mazes / unique, 1), items_per_cpu_s=round(args.mazes / unique_cpu, 1))

    if args.skip_build:
        return
    with tempfile.TemporaryDirectory() as tmp:
        for aug in (0, 7):
            start = time.perf_counter()
            summary = build_maze(Path(tmp) / f"maze-{aug}", train_size=1000, test_size=1000, aug=aug, seed=0)
            seconds = time.perf_counter() - start
            examples = sum(s["examples"] for s in summary["splits"].values())
            emit(what="maze_build" + ("_aug" if aug else ""), size="1000 train + 1000 test, 30x30",
                 threads=cores, seconds=round(seconds, 3), items_per_s=round(examples / seconds, 1),
                 examples=examples, mazes_per_s=round(2000 / seconds, 1))


if __name__ == "__main__":
    main()
