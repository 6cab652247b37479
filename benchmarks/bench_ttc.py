"""Test-time compute (issue 13): exact accuracy of one trained model for K = 1, 4, 16 candidates
per generator (noisy trajectories, random restarts), at 1, M, 2M and 4M segments (M = the trained
halt_max_steps), for every ranker, with the wall time and examples/s of each.

The model: the smoke preset (examples/smoke.yaml) trained on CPU for 300 steps on 4x4 sudoku with
10 of 16 cells blank (400 train puzzles x 32 versions, 400 test puzzles), which leaves it far from
saturated (~54% exact; the smoke data, 8 blanks and 2400 steps, saturates at 99.8%). The script
builds and trains that itself unless given --checkpoint and --data.

Each (generator, K) is one pass over the test split to 4M segments through eval.candidates (the
code `hrm eval` runs): the answers after segments 1, M, 2M, 4M are scored with every ranker
(eval.score.Scorer, as `hrm eval` scores), and the time to reach each depth is the sum, over
chunks, of the forward time up to that segment. One torch thread.

    python benchmarks/bench_ttc.py [--checkpoint CKPT --data DIR] [--noise 0.1] [--init-std 1.0]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import emit, smoke_model  # noqa: E402
from hrm.builders.dataset import open_dataset  # noqa: E402
from hrm.common import set_quiet  # noqa: E402
from hrm.eval.candidate_spec import CandidateSpec  # noqa: E402
from hrm.eval.predictions import PredictionBatch  # noqa: E402
from hrm.eval.score import Scorer  # noqa: E402
from hrm.eval.vote import RANKERS  # noqa: E402
from hrm.eval.candidates import run_chunk  # noqa: E402
from hrm.eval.batches import as_torch, eval_batches  # noqa: E402
from hrm.common.distributed import DistInfo  # noqa: E402
from hrm.eval.inference import load_for_inference  # noqa: E402


def train_model(root: Path) -> tuple[Path, Path]:
    run, data = smoke_model(root, ["--blanks", "10", "--train-size", "400", "--test-size", "400", "--aug", "31"],
                            ["epochs=96", "eval_interval=96"])
    return run / "checkpoints" / "step_300.pt", data


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def one_pass(model, dataset, spec: CandidateSpec, depths: list[int], batch_size: int, max_rows: int,
             limit: int):
    """Scorers at each depth and the forward seconds needed to reach it, over the first `limit`
    test examples."""
    dist = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    generator = torch.Generator().manual_seed(spec.seed)
    scorers = {d: Scorer(dataset, "test") for d in depths}
    for scorer in scorers.values():
        scorer.add_source("bench")
    seconds = {d: 0.0 for d in depths}
    k = spec.per_example
    done = 0
    for item in eval_batches(dataset.split("test"), batch_size, dist):
        if done >= limit:
            break
        item.mask[limit - done:] = False
        done += len(item.rows)
        batch = as_torch(item.batch, dist.device)
        per_chunk = max(1, max_rows // k)
        for lo in range(0, len(item.rows), per_chunk):
            rows = {key: value[lo:lo + per_chunk].repeat_interleave(k, dim=0) for key, value in batch.items()}
            valid = np.repeat(item.mask[lo:lo + per_chunk], k)
            examples = np.repeat(item.rows[lo:lo + per_chunk], k)[valid]
            start, scoring = time.perf_counter(), 0.0
            for segment, answers in enumerate(run_chunk(model, rows, spec, generator), start=1):
                if segment in scorers:
                    answers = answers.numpy()  # the read-back waits for the model: its time
                    now = time.perf_counter()
                    seconds[segment] += now - start - scoring  # the model's time only
                    scorers[segment].add(PredictionBatch(item.set_name, examples, answers.predictions[valid],
                                                         answers.q_halt[valid], answers.residual[valid]), 0)
                    scoring += time.perf_counter() - now
    return scorers, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--noise", type=float, action="append", help="sample noise std (repeat; default 0.1 0.3)")
    parser.add_argument("--init-std", type=float, action="append", help="restart std (repeat; default 0.5 1.0)")
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--batch-size", type=int, default=400)
    parser.add_argument("--max-rows", type=int, default=1600)
    parser.add_argument("--examples", type=int, default=None, help="score the first N test examples only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    set_quiet(True)
    tmp = None
    if args.checkpoint is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench_ttc_")
        args.checkpoint, args.data = train_model(Path(tmp.name))
    dataset = open_dataset(args.data)
    model, _ = load_for_inference(args.checkpoint, device="cpu", dataset=dataset)
    m = int(model.config.halt_max_steps)
    depths = [1, m, 2 * m, 4 * m]
    examples = sum(dataset.split("test").set(n).num_examples for n in dataset.split("test").set_names)
    examples = min(examples, args.examples or examples)
    generators = [("plain", {}, [1])]
    generators += [(f"samples noise={s:g}", {"noise": s}, args.ks) for s in (args.noise or [0.3])]
    generators += [(f"restarts init_std={s:g}", {"init_std": s}, args.ks) for s in (args.init_std or [1.0])]
    for name, options, ks in generators:
        for k in ks:
            key = "restarts" if "init_std" in options else "samples"
            spec = CandidateSpec(**{key: k}, **options, steps=4 * m, seed=0)
            scorers, seconds = one_pass(model, dataset, spec, depths, min(args.batch_size, examples), args.max_rows,
                                        examples)
            for depth in depths:
                for rank in RANKERS:
                    result = scorers[depth].result(1, rank)
                    scored = result.per_group.column("predictions").to_numpy() > 0  # the puzzles run
                    solved = result.per_group.column("pass@1").to_numpy()[scored].mean()
                    emit(what="ttc", model=str(args.checkpoint), examples=examples, generator=name, K=k,
                         segments=depth, ranker=rank, exact=round(float(solved), 4),
                         mean_candidate_exact=round(result.summary["exact_accuracy"], 4),
                         seconds=round(seconds[depth], 2), examples_per_s=round(examples / seconds[depth], 1),
                         load=load())
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
