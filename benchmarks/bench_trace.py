"""`hrm trace` against `hrm eval` of the same examples and segments (issue 23: at most ~3x).

The model: the smoke preset (examples/smoke.yaml) on the smoke data (4x4 sudoku, 8 blanks, 500 test
puzzles), trained briefly (--train-steps; the weights do not change what a pass costs). The script
builds and trains that itself unless given --checkpoint and --data.

Both sides are the library calls the commands make: `hrm.analysis.trace.trace` (the traced run, the
untrained control, the table, the summary and the pictures) and `hrm.eval.run.evaluate` with
--max-items N --max-versions 1 --steps M (the same N puzzles: both draw them with the same seed),
writing nothing. After one warm-up call of each (imports, numba), the two alternate --rounds times
in one process, so that a change of machine load hits both; the ratio is of the medians. One torch
thread. One JSON line, with the 1-minute load average beside it.

    python benchmarks/bench_trace.py [--checkpoint CKPT --data DIR] [--examples 256] [--segments 16]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import emit, smoke_model  # noqa: E402
from hrm.analysis.trace import trace  # noqa: E402
from hrm.common import set_quiet  # noqa: E402
from hrm.eval.candidate_spec import CandidateSpec  # noqa: E402
from hrm.eval.run import evaluate  # noqa: E402


def train_model(root: Path, steps: int) -> tuple[Path, Path]:
    return smoke_model(root, ["--blanks", "8", "--train-size", "600", "--test-size", "500", "--aug", "31"],
                       [f"max_steps={steps}", "eval_interval=100000"])


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--segments", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    set_quiet(True)
    with tempfile.TemporaryDirectory(prefix="bench_trace_") as tmp:
        root = Path(tmp)
        if args.checkpoint is None:
            args.checkpoint, args.data = train_model(root, args.train_steps)
        runs = iter(range(10**6))

        def run_trace() -> None:
            trace(args.checkpoint, args.data, root / f"trace_{next(runs)}", max_items=args.examples,
                  steps=args.segments, device="cpu", threads=1)

        def run_eval() -> None:
            evaluate([args.checkpoint], args.data, max_items=args.examples, max_versions=1, device="cpu", threads=1,
                     candidates=CandidateSpec(steps=args.segments))

        run_trace(), run_eval()  # warm-up: imports, numba caches, matplotlib's font cache
        seconds: dict[str, list[float]] = {"trace": [], "eval": []}
        for _ in range(args.rounds):
            seconds["trace"].append(timed(run_trace))
            seconds["eval"].append(timed(run_eval))
        trace_s, eval_s = statistics.median(seconds["trace"]), statistics.median(seconds["eval"])
        emit(what="trace_vs_eval", model=str(args.checkpoint), examples=args.examples, segments=args.segments,
             rounds=args.rounds, trace_s=round(trace_s, 2), eval_s=round(eval_s, 2),
             ratio=round(trace_s / eval_s, 2), trace_runs_s=[round(s, 2) for s in seconds["trace"]],
             eval_runs_s=[round(s, 2) for s in seconds["eval"]], load=f"{os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
