"""`hrm compare RUN [RUN...]`: one table of several training runs (hrm.train.compare)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from hrm.common import log, set_quiet
from hrm.cli.options import Force, Json, Quiet

EXAMPLE = """Examples:

  hrm compare runs/hrm runs/trm runs/transformer

  hrm compare runs/grid_* --out runs/grid_compare    (also compare.csv and curves.png)

  hrm compare runs/a runs/b --json --metric accuracy
"""


def compare(
    runs: Annotated[list[Path], typer.Argument(
        metavar="RUN", help="Run folders written by `hrm train --out` (config.yaml + metrics.jsonl).", show_default=False)],
    metric: Annotated[str, typer.Option(
        help="Test metric of the 'best' columns and of the curves (lowest wins for a loss).")] = "exact_accuracy",
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Also write OUT/compare.csv (the table, raw numbers) and OUT/curves.png.")] = None,
    force: Force = False,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Compare training runs: the config keys that differ, final and best test metrics, steps,
    wall time, examples/s; --out adds a CSV and the test curves overlaid in one PNG."""
    set_quiet(quiet)
    from hrm.common.outputs import check_output
    from hrm.train.compare import COMPARE_OUTPUT, compare_runs, format_table, read_runs, write_comparison

    if out is not None:
        check_output(out, COMPARE_OUTPUT, force=force)  # before reading the runs
    names = [str(run) for run in runs]
    configs, records = read_runs(names)
    summary = compare_runs(names, configs, records, metric)
    if out is not None:
        write_comparison(summary, records, out, force=force)
        log(f"wrote {out}/compare.csv and {out}/curves.png")
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        typer.echo(format_table(summary))
