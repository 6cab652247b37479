from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from hrm.common import set_quiet
from hrm.cli.options import HALT_RULES, RANKERS, Data, Force, Json, Quiet, Seed, Threads, choices

EXAMPLE = ("Examples: hrm eval --checkpoint runs/arc --data data/arc1 --vote 2 --out runs/arc/eval "
           "--submission submission.json  |  hrm eval --checkpoint runs/arc --data data/arc1 --max-items 40 "
           "--max-versions 8   (a quick seeded estimate)  |  hrm eval --predictions "
           "runs/arc/eval/predictions.parquet --data data/arc1 --json  |  hrm eval --checkpoint runs/trm "
           "--data data/sudoku --samples 16 --noise 0.1 --rank max_q --json (PTRM)  |  hrm eval --checkpoint "
           "runs/eqr --data data/sudoku --restarts 16 --init-std 1 --steps 64 --rank residual (EqR)  |  hrm eval "
           "--predictions runs/arc/eval/predictions.parquet --data data/arc1 --pool 1,2,4,8,32 --out runs/arc/pool "
           "(the vote-pool curve)")


def eval_command(
    data: Data,
    checkpoint: Annotated[Optional[list[Path]], typer.Option(
        "--checkpoint", metavar="CHECKPOINT",
        help="Checkpoint (.pt) or run directory (its latest checkpoint), or a reference HRM/TRM checkpoint "
             "(weights file with all_config.yaml beside it); repeat to ensemble: all checkpoints vote "
             "together.")] = None,
    vote: Annotated[int, typer.Option(
        "--vote", min=1, metavar="K", help="Report pass@1..pass@K after voting over the augmented versions (ARC "
                                           "adds pass@5/10/100/1000 when reached).")] = 2,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", metavar="DIR",
        help="Directory for predictions.parquet, results.parquet (per task/puzzle) and metrics.json.")] = None,
    predictions: Annotated[Optional[list[Path]], typer.Option(
        "--predictions", metavar="FILE", help="Without --checkpoint: predictions table(s) to score (repeat to "
                                              "ensemble). With --checkpoint: where to write the table.")] = None,
    submission: Annotated[Optional[Path], typer.Option(
        "--submission", metavar="FILE",
        help="Write the Kaggle ARC submission JSON (attempt_1/attempt_2 per test pair).")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", min=1, show_default=False,
                                                      help="Examples per forward pass.")] = None,
    max_items: Annotated[Optional[int], typer.Option(
        "--max-items", min=1, show_default=False,
        help="Score a seeded subset of N tasks (ARC) or puzzles, recorded as `subset` in the output.")] = None,
    max_versions: Annotated[Optional[int], typer.Option(
        "--max-versions", min=1, show_default=False,
        help="At most N versions per task/puzzle: the original plus N-1 seeded augmented ones.")] = None,
    seed: Seed = 0,  # the --max-items / --max-versions draw, the --pool draws, the candidates' noise
    threads: Threads = None,
    device: Annotated[Optional[str], typer.Option(
        "--device", metavar="DEVICE", help="cpu, cuda, cuda:1, mps (default: best available).")] = None,
    split: Annotated[str, typer.Option("--split", metavar="SPLIT", help="Split to score.")] = "test",
    samples: Annotated[int, typer.Option(
        "--samples", metavar="K", help="Test-time candidates: K noisy trajectories per version (with --noise).")] = 1,
    noise: Annotated[float, typer.Option(
        "--noise", metavar="STD", help="Std of the Gaussian noise added to the latent states after every "
                                       "update.")] = 0.0,
    restarts: Annotated[int, typer.Option(
        "--restarts", metavar="K", help="Test-time candidates: K random restarts per version (with --init-std); "
                                        "K = samples x restarts candidates in all.")] = 1,
    init_std: Annotated[float, typer.Option(
        "--init-std", metavar="STD", help="Std of the noise added to the initial states of each restart.")] = 0.0,
    steps: Annotated[Optional[int], typer.Option(
        "--steps", metavar="N", help="Segments at inference (default: the trained halt_max_steps).")] = None,
    halt: Annotated[str, typer.Option(
        "--halt", metavar=choices(HALT_RULES),
        help="all: run every segment; q: stop each candidate where its Q head says halt.")] = "all",
    rank: Annotated[str, typer.Option(
        "--rank", metavar=choices(RANKERS),
        help="Ranker of the candidates: votes (count, ties by mean q), max_q, mean_q, residual (smallest "
             "fixed-point residual), q_votes (q-weighted votes).")] = "votes",
    pool: Annotated[Optional[str], typer.Option(
        "--pool", metavar="N[,N...]", show_default=False,
        help="Vote-pool curve: also score each item voting with only N of its versions (seeded draws), "
             "for each N: accuracy_by_pool in --json, a table, and with --out pool.png.")] = None,
    pool_draws: Annotated[Optional[int], typer.Option(
        "--pool-draws", min=1, show_default=False,
        help="Pools drawn per item and N for --pool (default 16; every pool when there are no more "
             "than this many: then the figure is exact).")] = None,
    force: Force = False,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Score checkpoints (or a saved predictions table): inverse-transform voting, pass@K, ARC submission;
    test-time candidates (noisy samples, random restarts, more segments) and their rankers."""
    from hrm.eval.candidate_spec import CandidateSpec
    from hrm.eval.pool import parse_pool_sizes
    from hrm.eval.run import evaluate, format_result  # here: torch and numba load only when needed

    set_quiet(quiet)
    candidates = CandidateSpec(samples=samples, noise=noise, restarts=restarts, init_std=init_std, steps=steps,
                               halt=halt, seed=seed)
    summary = evaluate(checkpoint or [], data, vote_k=vote, out=out, predictions=predictions or [],
                       submission=submission, batch_size=batch_size, device=device, split=split, force=force,
                       max_items=max_items, max_versions=max_versions, seed=seed, threads=threads,
                       candidates=candidates, rank=rank, pool=parse_pool_sizes(pool) if pool is not None else (),
                       pool_draws=pool_draws)
    if summary:  # empty on the other ranks of a torchrun launch: rank 0 reports
        typer.echo(json.dumps(summary) if as_json else format_result(summary))
