"""`hrm trace CHECKPOINT`: look inside the recurrence, update by update (hrm.analysis.trace)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from hrm.common import set_quiet
from hrm.cli.options import Data, Force, Json, Out, Quiet, Threads

EXAMPLE = """Examples:

  hrm trace runs/sudoku --data data/sudoku --out runs/sudoku/trace --index 0 --index 7

  hrm trace runs/trm --data data/maze --out runs/trm/trace --max-items 64 --steps 32 --json

  hrm show runs/sudoku/trace --index 7    (redraw the pictures; a strip for another traced example)

Writes trace.parquet (one row per example x update), summary.json (residual_by_update,
accuracy_by_update, participation_ratio, pr_by_items, protocol), residuals.png, accuracy.png,
pr.png and steps_<i>.png for each --index.
"""


def trace_command(
    checkpoint: Annotated[Path, typer.Argument(
        metavar="CHECKPOINT", show_default=False,
        help="Checkpoint (.pt), run directory (its latest checkpoint) or reference checkpoint.")],
    data: Data,
    out: Out,
    split: Annotated[str, typer.Option("--split", help="Split to trace.")] = "test",
    max_items: Annotated[int, typer.Option(
        "--max-items", min=1, help="Trace N items (puzzles, ARC tasks; the original version of each), a "
                                   "seeded draw; all of them when the split has no more.")] = 256,
    index: Annotated[Optional[list[int]], typer.Option(
        "--index", metavar="I", show_default=False,
        help="Also trace example I of the split (its row, as in `hrm show --index`) and draw its steps_<I>.png; "
             "repeat for several.")] = None,
    steps: Annotated[Optional[int], typer.Option(
        "--steps", min=1, show_default=False, help="Segments to run (default: the trained halt_max_steps).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the --max-items draw.")] = 0,
    device: Annotated[Optional[str], typer.Option(
        "--device", help="cpu, cuda, cuda:1, mps (default: best available).")] = None,
    threads: Threads = None,
    force: Force = False,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Record every recurrent update of a model (hrm, trm, transformer) over examples of a split: forward
    residuals of z_high and z_low, the decoded answer after each update, participation ratios (trained
    against untrained)."""
    from hrm.analysis.trace import trace  # here: torch loads only when the command runs
    from hrm.analysis.trace_report import format_summary

    set_quiet(quiet)
    summary = trace(checkpoint, data, out, split=split, max_items=max_items, index=index or [], steps=steps,
                    seed=seed, force=force, device=device, threads=threads)
    typer.echo(json.dumps(summary) if as_json else format_summary(summary))
