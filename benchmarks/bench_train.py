"""Training-step throughput on CPU (float32) against an independent eager baseline (SPEC 7).

Per size - "smoke" (hidden 64, 1+1 layers, batch 128) and "paper" (hidden 512, 4+4 layers,
batch 16), both on 9x9 sudoku-shaped data (81 tokens) - one JSON line with:
- our step (`loop.train_step`, as `hrm train` runs it) eager and with torch.compile, and the
  independent eager step of benchmarks/baseline_hrm.py (nanoGPT-style, same maths; checked
  equal to ours on three steps in float64 before any timing), measured in interleaved blocks
  so that a neighbour's load hits all alike;
- vs_eager_baseline: our examples/s (compiled, when compiling is the default) over the baseline's;
- compile_seconds (the first compiled steps minus ordinary ones) and the run length from which
  compiling pays for itself;
- model FLOP/s (torch's FlopCounterMode, per step) against the float32 matmul peak measured here.
A last line gives the paper's Sudoku recipe on one H100 (FLOPs per step, step time at 40% MFU).

    python benchmarks/bench_train.py [--sizes smoke paper] [--threads 2] [--rounds 3]
"""
from __future__ import annotations

import argparse
import itertools
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import baseline_hrm  # noqa: E402
from _common import emit  # noqa: E402

from hrm.builders.dataset import DatasetWriter, atomic_directory  # noqa: E402
from hrm.train import loop  # noqa: E402
from hrm.train.compiled import compile_by_default  # noqa: E402
from hrm.train.config import load_config  # noqa: E402
from hrm.eval.batches import as_torch  # noqa: E402
from hrm.common.distributed import setup  # noqa: E402
from hrm.models.layers import swiglu_width  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SIZES = {"smoke": (EXAMPLES / "smoke.yaml", ["global_batch_size=128"]),
         "paper": (EXAMPLES / "sudoku_extreme_1k.yaml", ["global_batch_size=16"])}
H100_BF16_DENSE_FLOP_S = 989e12  # NVIDIA H100 SXM datasheet, dense bf16 tensor cores
PAPER_BATCH = 768
LONG_RUN_STEPS = 20_000  # "ours" is the step of a run longer than a few minutes


def write_data(out: Path, side: int, rows: int, identifiers: int = 64) -> Path:
    """Random sudoku-shaped data (tokens 1..side+1, some puzzle identifiers): the step's cost
    does not depend on the content."""
    rng = np.random.default_rng(0)
    seq = side * side
    with atomic_directory(out, force=True) as tmp:
        writer = DatasetWriter(tmp, task="sudoku", seed=0, builder={})
        ids = writer.add_identifiers([f"p{i}" for i in range(identifiers)])
        for name in ("train", "test"):
            split = writer.split(name, seq_len=seq, vocab_size=side + 2)
            tokens = rng.integers(1, side + 2, (rows, seq), dtype=np.uint8)
            split.set().append(tokens, tokens, examples_per_puzzle=np.ones(rows, np.int64),
                               puzzles_per_group=np.ones(rows, np.int64),
                               puzzle_identifiers=ids[rng.integers(0, identifiers, rows)])
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


def baseline_for(trainer: loop.Trainer) -> baseline_hrm.Trainer:
    cfg, arch, sig = trainer.config, trainer.model.config, trainer.signature
    model = baseline_hrm.HRM(baseline_hrm.Cfg(
        seq_len=sig["seq_len"], vocab=sig["vocab_size"], num_ids=sig["num_puzzle_identifiers"],
        hidden=arch.hidden_size, heads=arch.num_heads, H_layers=arch.H_layers, L_layers=arch.L_layers,
        H_cycles=arch.H_cycles, L_cycles=arch.L_cycles, mlp=swiglu_width(arch.hidden_size, arch.expansion),
        puzzle_dim=arch.puzzle_emb_ndim, rope=arch.pos_encodings == "rope", halt_max_steps=arch.halt_max_steps,
        explore=arch.halt_exploration_prob))
    model = model.to(next(trainer.model.parameters()).dtype)
    baseline_hrm.load_from_hrm(model, trainer.model.state_dict())
    return baseline_hrm.Trainer(model, cfg.global_batch_size, cfg.lr, cfg.puzzle_emb_lr, (cfg.beta1, cfg.beta2),
                                cfg.weight_decay, cfg.puzzle_emb_weight_decay, cfg.lr_warmup_steps,
                                trainer.total_steps, cfg.lr_min_ratio, cfg.log_interval)


def check_same_maths(config_file: Path, overrides: list[str], workdir: Path, steps: int = 3) -> float:
    """`steps` steps of ours and of the baseline in float64 from the same weights, batches and
    random draws; returns the largest relative difference of the weight changes (raises if > 1e-6)."""
    config = load_config(config_file, [*overrides, "compile=false", "lr_warmup_steps=0", "lr=1e-2",
                                       "puzzle_emb_lr=1e-2"])
    ours = loop.build(config, workdir / "check", setup("cpu"))
    ours.model.double()
    ours.optimizers = loop.build_optimizers(ours.model, config)
    theirs = baseline_for(ours)
    start = {k: v.clone() for k, v in theirs.model.state_dict().items()}
    batches = ours.loader.iterate(prefetch=False)
    for step in range(steps):
        batch = as_torch(next(batches).batch, ours.dist.device)
        torch.manual_seed(100 + step)
        loop.train_step(ours, batch)
        torch.manual_seed(100 + step)
        theirs.step(batch)
    ours.loader.close()
    mine = baseline_for(ours).model.state_dict()  # our weights now, under the baseline's names
    worst = 0.0
    for name, value in theirs.model.state_dict().items():
        their_delta, our_delta = value - start[name], mine[name] - start[name]
        scale = their_delta.abs().max().item()
        if scale > 0:  # the fixed tensors (initial states, rotary tables) do not move in either
            worst = max(worst, (our_delta - their_delta).abs().max().item() / scale)
    if worst > 1e-6:
        raise SystemExit(f"the baseline and our step differ (largest relative difference {worst:.2e})")
    assert torch.equal(ours.state.carry.halted, theirs.carry["halted"])
    return worst


def step_flops(trainer: loop.Trainer, batch: dict[str, torch.Tensor]) -> int:
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        loop.train_step(trainer, batch)
    return counter.get_total_flops()


def bench(name: str, rounds: int, steps: int, peak: float, workdir: Path) -> dict:
    config_file, size_overrides = SIZES[name]
    data = write_data(workdir / "data", 9, 4096)
    overrides = [f"data_path={data}", "device=cpu", *size_overrides]
    # The maths do not depend on the batch size: the paper-size check runs 2 slots in float64.
    check = ["global_batch_size=2"] if name == "paper" else []
    worst = check_same_maths(config_file, [*overrides, *check], workdir, steps=1 if name == "paper" else 3)
    dist = setup("cpu")
    eager = loop.build(load_config(config_file, [*overrides, "compile=false"]), workdir / "eager", dist)
    compiled = loop.build(load_config(config_file, [*overrides, "compile=true"]), workdir / "compiled", dist)
    baseline = baseline_for(eager)
    # The same batches for all three, drawn beforehand: the loader is measured in bench_loader.py.
    loader = eager.loader.iterate(prefetch=False)
    batches = [as_torch(next(loader).batch, dist.device) for _ in range(16)]
    feeds = {which: itertools.cycle(batches) for which in ("eager", "compiled", "baseline")}

    def run(which: str, count: int) -> float:
        start = time.perf_counter()
        for _ in range(count):
            batch = next(feeds[which])
            if which == "baseline":
                baseline.step(batch)
            else:
                loop.train_step(eager if which == "eager" else compiled, batch)
        return time.perf_counter() - start

    flops = step_flops(eager, next(feeds["eager"]))
    run("eager", 1), run("baseline", 1)
    first_compiled = run("compiled", 2)  # compiles the first step's graphs and the refilled steps'
    totals = {"eager": 0.0, "compiled": 0.0, "baseline": 0.0}
    for _ in range(rounds):
        for which in totals:
            totals[which] += run(which, steps)
    per_step = {which: total / (rounds * steps) for which, total in totals.items()}
    compile_seconds = max(0.0, first_compiled - 2 * per_step["compiled"])
    saved = per_step["eager"] - per_step["compiled"]
    ours = "compiled" if compile_by_default(dist.device, LONG_RUN_STEPS) else "eager"
    batch = eager.config.global_batch_size
    peak = max(peak, matmul_peak(windows=3))  # again after the run: the machine's load drifts
    row = dict(what="train_step", size=name,
               shape=f"batch {batch}, seq 81, hidden {eager.model.config.hidden_size}, "
                     f"{eager.model.config.H_layers}+{eager.model.config.L_layers} layers, float32",
               ours=ours, seconds=round(per_step[ours], 4), items_per_s=round(batch / per_step[ours], 1),
               vs_eager_baseline=round(per_step["baseline"] / per_step[ours], 3),
               eager_items_per_s=round(batch / per_step["eager"], 1),
               compiled_items_per_s=round(batch / per_step["compiled"], 1),
               baseline_items_per_s=round(batch / per_step["baseline"], 1),
               eager_vs_baseline=round(per_step["baseline"] / per_step["eager"], 3),
               compile_seconds=round(compile_seconds, 1),
               compile_pays_after_steps=round(compile_seconds / saved) if saved > 0 else None,
               compile_pays_after_minutes=round(compile_seconds / saved * per_step["eager"] / 60, 1) if saved > 0 else None,
               model_flops_per_step=flops, model_flop_s=round(flops / per_step[ours]),
               matmul_peak_flop_s=round(peak), fraction_of_peak=round(flops / per_step[ours] / peak, 3),
               baseline_max_rel_diff=worst, rounds=rounds, steps_per_round=steps,
               threads=torch.get_num_threads())
    for trainer in (eager, compiled):
        trainer.loader.close()
    emit(**row)
    return row


def per_tensor_adam_atan2(params: list[torch.Tensor], state: list[tuple[torch.Tensor, torch.Tensor]], t: int,
                          lr: float = 1e-4, betas=(0.9, 0.95), wd: float = 0.1) -> None:
    """The update as it was written before foreach: one tensor at a time."""
    b1, b2 = betas
    with torch.no_grad():
        for p, (m, v) in zip(params, state):
            p.mul_(1 - lr * wd)
            m.lerp_(p.grad, 1 - b1)
            v.lerp_(p.grad.square(), 1 - b2)
            p.add_(torch.atan2(m, v.sqrt() / math.sqrt(1 - b2 ** t)), alpha=-lr / (1 - b1 ** t))


def bench_optimizer(name: str, rounds: int = 5) -> None:
    """AdamAtan2 (foreach) against the per-tensor loop on the dense weights of the model of `name`."""
    from hrm.train.optim import AdamAtan2
    from hrm.models.registry import build_model
    config = load_config(SIZES[name][0], ["data_path=unused"])
    model = build_model(config.arch, seq_len=81, vocab_size=11, num_puzzle_identifiers=1, batch_size=1)
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.randn_like(p)
    foreach = AdamAtan2(params, lr=1e-4)
    state = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
    times = {"foreach": 0.0, "per_tensor": 0.0}
    for step in range(1, rounds + 2):
        for which in times:
            start = time.perf_counter()
            foreach.step() if which == "foreach" else per_tensor_adam_atan2(params, state, step)
            if step > 1:  # the first round allocates the state
                times[which] += time.perf_counter() - start
    emit(what="adam_atan2_step", size=name, tensors=len(params), parameters=sum(p.numel() for p in params),
         seconds=round(times["foreach"] / rounds, 5), per_tensor_seconds=round(times["per_tensor"] / rounds, 5),
         speedup_vs_per_tensor=round(times["per_tensor"] / times["foreach"], 3), threads=torch.get_num_threads())


def h100_paper_recipe(paper_row: dict) -> None:
    """FLOPs scale with the batch (every matmul and attention is per example): the paper's batch of
    768 costs 768/16 of the measured batch-16 step."""
    flops = paper_row["model_flops_per_step"] * PAPER_BATCH // 16
    at_40 = flops / (0.4 * H100_BF16_DENSE_FLOP_S)
    emit(what="train_step_h100_estimate", size="paper", shape=f"batch {PAPER_BATCH}, seq 81, hidden 512, bf16",
         model_flops_per_step=flops, peak_flop_s=H100_BF16_DENSE_FLOP_S, seconds_at_40pct_mfu=round(at_40, 4),
         steps_per_s_at_40pct_mfu=round(1 / at_40, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (each runs all three)")
    parser.add_argument("--steps", type=int, default=None, help="steps per block (default: 10 smoke, 1 paper)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--optimizer-only", action="store_true", help="only the AdamAtan2 comparison")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.sizes:
        bench_optimizer(name)
    if args.optimizer_only:
        return
    peak = matmul_peak()
    for name in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            row = bench(name, args.rounds, args.steps or (10 if name == "smoke" else 1), peak, Path(tmp))
        if name == "paper":
            h100_paper_recipe(row)


if __name__ == "__main__":
    main()
