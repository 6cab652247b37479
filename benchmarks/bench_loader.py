"""Training-loader throughput on one core (SPEC 7: >= 100k examples/s for sudoku batches of 768,
>= 20k for ARC 900-token batches).

Writes a sudoku-shaped dataset (1000 groups x 1001 one-example puzzles = 1.001M rows of 81 tokens,
like Sudoku-Extreme-1k with --aug 1000) and an ARC-shaped one (900-token rows, mostly padding as
real ARC grids are, 4 examples per puzzle), then times the loader's batches (sampling + reads +
label mapping, no prefetch thread: one core) cold (first batches, cache filling) and warm, and a
baseline that reads the same rows with zarr's own fancy indexing.

    python benchmarks/bench_loader.py [--batches 200]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import peak_rss_mb  # noqa: E402

from hrm.builders.dataset import DatasetWriter, atomic_directory, open_dataset  # noqa: E402
from hrm.train.data import TrainLoader, TrainSampler  # noqa: E402
from hrm.common.distributed import DistInfo  # noqa: E402

BATCH = 768


def write(out: Path, *, groups: int, puzzles_per_group: int, examples_per_puzzle: int, seq: int,
          arc_like: bool) -> Path:
    rng = np.random.default_rng(0)
    with atomic_directory(out, force=True) as tmp:
        writer = DatasetWriter(tmp, task="arc" if arc_like else "sudoku", seed=0, builder={})
        split = writer.split("train", seq_len=seq, vocab_size=12 if arc_like else 11)
        per_call = max(1, 100_000 // (puzzles_per_group * examples_per_puzzle))
        for first in range(0, groups, per_call):
            g = min(per_call, groups - first)
            n = g * puzzles_per_group * examples_per_puzzle
            if arc_like:  # a random grid of up to 30x30 in the corner, pad (0) elsewhere
                tokens = np.zeros((n, 30, 30), np.uint8)
                h, w = rng.integers(3, 31, 2)
                tokens[:, :h, :w] = rng.integers(2, 12, (n, h, w), dtype=np.uint8)
                tokens = tokens.reshape(n, seq)
            else:
                tokens = rng.integers(1, 11, (n, seq), dtype=np.uint8)
            split.set().append(tokens, tokens,
                               examples_per_puzzle=np.full(g * puzzles_per_group, examples_per_puzzle),
                               puzzles_per_group=np.full(g, puzzles_per_group))
        writer.close()
    return out


def bench(name: str, path: Path, batches: int) -> None:
    split = open_dataset(path).split("train")
    dist = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    loader = TrainLoader(split, global_batch_size=BATCH, epochs=10**6, epochs_per_pass=10**6, seed=0, dist=dist)
    stream = loader.iterate(prefetch=False)
    timings = {}
    for phase in ("cold", "warm"):
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(batches):
            next(stream)
        timings[phase] = (time.perf_counter() - start, time.process_time() - start_cpu)
    # Baseline: the same sampler, rows read with zarr's orthogonal indexing (no block cache).
    pset = split.set()
    sampler = TrainSampler(pset.puzzle_indices, pset.group_indices, batch_size=BATCH, epochs=10**6,
                           epochs_per_pass=10**6, seed=0)
    few = max(3, batches // 20)
    start = time.perf_counter()
    for _ in range(few):
        rows, _ = sampler.next_batch()
        order = np.sort(rows)
        pset.inputs.oindex[order], pset.labels.oindex[order]
    naive = (time.perf_counter() - start) / few
    size = f"{pset.num_examples} rows x {split.seq_len} tokens, batch {BATCH}"
    for phase, (seconds, cpu_seconds) in timings.items():
        # CPU-time rate too: on a shared machine wall time measures the neighbours.
        print(json.dumps({"what": f"loader_{name}_{phase}", "size": size, "seconds": round(seconds, 3),
                          "items_per_s": round(batches * BATCH / seconds),
                          "items_per_cpu_s": round(batches * BATCH / max(cpu_seconds, 1e-9)), "batches": batches,
                          "zarr_oindex_items_per_s": round(BATCH / naive),
                          "speedup_vs_zarr_oindex": round(naive * batches / seconds, 1),
                          "peak_rss_mb": round(peak_rss_mb(), 1)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        sudoku = write(Path(tmp) / "sudoku", groups=1000, puzzles_per_group=1001, examples_per_puzzle=1,
                       seq=81, arc_like=False)
        bench("sudoku", sudoku, args.batches)
        arc = write(Path(tmp) / "arc", groups=200, puzzles_per_group=250, examples_per_puzzle=4, seq=900,
                    arc_like=True)
        bench("arc", arc, args.batches)


if __name__ == "__main__":
    main()
