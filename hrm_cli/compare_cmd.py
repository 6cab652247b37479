"""`hrm compare RUN [RUN...]`: one table of several training runs (hrm.analysis.compare)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from hrm.common import UsageError, log, set_quiet
from hrm.cli.options import Force, Json, Quiet

EXAMPLE = """Examples:

  hrm compare runs/hrm runs/trm runs/transformer

  hrm compare runs/grid_* --out runs/grid_compare    (also compare.csv and curves.png)

  hrm compare runs/a runs/b --json --metric accuracy

  hrm compare runs/*_s0 runs/*_s1 runs/*_s2 --mean-over seed    (mean ± std over the seeds)

  hrm compare runs/*/trace --mean-over seed --out runs/inside    (`hrm trace` folders)
"""


def compare(
    runs: Annotated[list[Path], typer.Argument(
        metavar="RUN", show_default=False,
        help="Run folders written by `hrm train --out` (config.yaml + metrics.jsonl), or trace folders "
             "written by `hrm trace --out` (all of one kind).")],
    metric: Annotated[str, typer.Option(
        metavar="METRIC",
        help="Test metric of the 'best' columns and of the curves (lowest wins for a loss).")] = "exact_accuracy",
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", metavar="DIR",
        help="Also write OUT/compare.csv (the table, raw numbers) and OUT/curves.png.")] = None,
    mean_over: Annotated[Optional[str], typer.Option(
        "--mean-over", metavar="KEY", show_default=False,
        help="Group the runs by every differing config key but KEY (e.g. seed) and report each figure "
             "as mean ± std over a group's runs; the CSV and PNG then hold one row and one mean curve per "
             "group, and --json adds \"grouped\".")] = None,
    force: Force = False,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Compare training runs: the config keys that differ, final and best test metrics, steps,
    wall time, examples/s; --out adds a CSV and the test curves overlaid in one PNG. Given `hrm
    trace` folders: their accuracy, participation ratios and residuals, and a chart of them by update."""
    set_quiet(quiet)
    from hrm.analysis.trace_files import is_trace_folder

    traces = [is_trace_folder(run) for run in runs]
    if any(traces):
        if not all(traces):
            raise UsageError("give either run folders or trace folders (`hrm trace --out`), not both: "
                             f"{runs[traces.index(False)]} is not a trace")
        if metric != "exact_accuracy":
            raise UsageError("--metric applies to training runs; traces are compared by their own figures")
        _compare_traces([str(run) for run in runs], mean_over, out, force, as_json)
        return
    from hrm.common.outputs import check_output
    from hrm.analysis.compare import (COMPARE_OUTPUT, check_group_key, compare_runs, format_group_table, format_table,
                                   group_runs, read_runs, write_comparison, write_group_comparison)

    if out is not None:
        check_output(out, COMPARE_OUTPUT, force=force)  # before reading the runs
    names = [str(run) for run in runs]
    configs, records = read_runs(names)
    if mean_over is not None:
        check_group_key(configs, mean_over)
    summary = compare_runs(names, configs, records, metric)
    grouped = group_runs(summary, mean_over) if mean_over is not None else None
    if out is not None:
        if grouped is not None:
            write_group_comparison(grouped, summary, records, out, force=force)
        else:
            write_comparison(summary, records, out, force=force)
        log(f"wrote {out}/compare.csv and {out}/curves.png")
    if as_json:
        typer.echo(json.dumps({**summary, "grouped": grouped} if grouped is not None else summary))
    else:
        typer.echo(format_group_table(grouped) if grouped is not None else format_table(summary))


def _compare_traces(folders: list[str], mean_over: Optional[str], out: Optional[Path], force: bool,
                    as_json: bool) -> None:
    from hrm.common.outputs import check_output
    from hrm.analysis.compare import COMPARE_OUTPUT
    from hrm.analysis.trace_compare import compare_traces, format_trace_table, read_traces, write_trace_comparison

    if out is not None:
        check_output(out, COMPARE_OUTPUT, force=force)
    summaries, configs = read_traces(folders)
    result = compare_traces(folders, summaries, configs, mean_over)
    if out is not None:
        write_trace_comparison(result, summaries, out, force=force)
        log(f"wrote {out}/compare.csv and {out}/curves.png")
    typer.echo(json.dumps(result) if as_json else format_trace_table(result))
