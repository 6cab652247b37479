"""Training-step throughput on CPU (float32), SPEC 7.

For the smoke preset and the full Sudoku config (hidden 512) at a small batch: examples/s of the
trainer's step, the model's FLOP/s (counted by torch's FlopCounterMode) against the machine's
float32 matmul peak measured here, and against a straightforward eager step of the same model
(unfused attention - softmax(QK^T)V by hand - and a host sync for the metrics every step).
Prints one JSON line per measurement.

    python benchmarks/bench_train.py [--steps 5] [--threads N]
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import types
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import emit  # noqa: E402

from hrm.builders.dataset import DatasetWriter, atomic_directory  # noqa: E402
from hrm.train import layers, loop  # noqa: E402
from hrm.train.config import load_config  # noqa: E402
from hrm.train.data import as_torch  # noqa: E402
from hrm.train.distributed import setup  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def write_data(out: Path, side: int, rows: int) -> Path:
    """Random sudoku-shaped data (tokens 1..side+1): the step's cost does not depend on content."""
    rng = np.random.default_rng(0)
    seq = side * side
    with atomic_directory(out, force=True) as tmp:
        writer = DatasetWriter(tmp, task="sudoku", seed=0, builder={})
        for name in ("train", "test"):
            split = writer.split(name, seq_len=seq, vocab_size=side + 2)
            tokens = rng.integers(1, side + 2, (rows, seq), dtype=np.uint8)
            split.set().append(tokens, tokens, examples_per_puzzle=np.ones(rows, np.int64),
                               puzzles_per_group=np.ones(rows, np.int64))
        writer.close()
    return out


def matmul_peak(windows: int = 8, seconds: float = 0.3, size: int = 1024) -> float:
    """float32 matmul FLOP/s: the best of several short windows (on a shared machine the best
    window is the one least disturbed by neighbours)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = 0.0
    for _ in range(windows):
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            torch.mm(a, b)
            count += 1
        best = max(best, 2 * size ** 3 * count / (time.perf_counter() - start))
    return best


def naive_attention(q, k, v, *args, **kwargs):  # noqa: ANN001 - SDPA's signature
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return scores.softmax(-1) @ v


@contextmanager
def unfused_attention():
    """The eager baseline's attention: softmax(QK^T/sqrt(d))V by hand instead of fused SDPA."""
    real = layers.F
    layers.F = types.SimpleNamespace(**{**{k: getattr(real, k) for k in dir(real) if not k.startswith("__")},
                                        "scaled_dot_product_attention": naive_attention})
    try:
        yield
    finally:
        layers.F = real


def interleaved(ours: loop.Trainer, eager: loop.Trainer, steps: int, rounds: int = 4) -> tuple[float, float]:
    """Seconds per step of both, measured in alternating blocks so that a neighbour's load on a
    shared machine hits both alike. The baseline also reads its metrics back every step."""
    fast_batches, eager_batches = ours.loader.iterate(prefetch=True), eager.loader.iterate(prefetch=False)
    totals = [0.0, 0.0]
    for round_index in range(rounds + 1):
        for which, (trainer, batches) in enumerate([(ours, fast_batches), (eager, eager_batches)]):
            with unfused_attention() if which else nullcontext():
                start = time.perf_counter()
                for _ in range(steps):
                    loop.train_step(trainer, as_torch(next(batches).batch, trainer.dist.device))
                    if which:
                        {k: float(v) for k, v in trainer.state.window.items()}
                if round_index:  # round 0 warms up both
                    totals[which] += time.perf_counter() - start
    ours.loader.close(), eager.loader.close()
    return totals[0] / (steps * rounds), totals[1] / (steps * rounds)


def step_flops(trainer: loop.Trainer) -> int:
    from torch.utils.flop_counter import FlopCounterMode
    batch = as_torch(next(trainer.loader.iterate(prefetch=False)).batch, trainer.dist.device)
    with FlopCounterMode(display=False) as counter:
        loop.train_step(trainer, batch)
    return counter.get_total_flops()


def bench(name: str, config_file: Path, overrides: list[str], side: int, steps: int, peak: float,
          workdir: Path) -> None:
    data = write_data(workdir / f"data_{side}", side, 4096)
    config = load_config(config_file, [f"data_path={data}", "device=cpu", "compile=false", *overrides])
    dist = setup("cpu")
    ours = loop.build(config, workdir / "run", dist)
    flops = step_flops(ours)
    eager = loop.build(config, workdir / "run", dist)
    fast, slow = interleaved(ours, eager, steps)
    peak = max(peak, matmul_peak(windows=3))  # again after the run: the machine's load drifts
    batch = config.global_batch_size
    emit(what=f"train_step_{name}", size=f"batch {batch}, seq {side * side}, hidden {config.arch['hidden_size']}",
         seconds=round(fast * steps * 4, 4), items_per_s=round(batch / fast, 1), steps_per_s=round(1 / fast, 2),
         model_flops_per_step=flops, model_flop_s=round(flops / fast), matmul_peak_flop_s=round(peak),
         fraction_of_peak=round(flops / fast / peak, 3), eager_items_per_s=round(batch / slow, 1),
         speedup_vs_eager=round(slow / fast, 3), threads=torch.get_num_threads())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="steps per timed block (4 blocks each)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    peak = matmul_peak()
    with tempfile.TemporaryDirectory() as tmp:
        bench("smoke", EXAMPLES / "smoke.yaml", [], 4, args.steps, peak, Path(tmp))
        bench("sudoku_full", EXAMPLES / "sudoku_extreme_1k.yaml", ["global_batch_size=8"], 9,
              max(1, args.steps // 5), peak, Path(tmp))


if __name__ == "__main__":
    main()
