"""`hrm show TARGET`: a dataset example, an ARC task, a model's predictions, or a run's curves."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from hrm.common import HrmError, UsageError, log, set_quiet
from hrm.cli.options import Json, Quiet

if TYPE_CHECKING:
    from hrm.show.render import Figure

EXAMPLE = """Examples:

  hrm show data/sudoku --split test --index 3

  hrm show data/arc --task 007bbfb7 --png task.png

  hrm show --predictions preds.parquet --data data/arc --task 007bbfb7

  hrm show runs/sudoku --png curves.pdf    (the training curves, as PDF)

  hrm show runs/sudoku/eval    (the accuracy-by-segment curve of `hrm eval --out runs/sudoku/eval`)

  hrm show runs/sudoku/trace --index 7    (redraw `hrm trace`'s pictures, with the steps of example 7)
"""


def _kind(target: Path) -> str:
    if not target.exists():
        raise HrmError(f"{target} does not exist")
    from hrm.analysis.trace_files import SUMMARY_FILE, TABLE_FILE
    if (target / SUMMARY_FILE).is_file() and (target / TABLE_FILE).is_file():
        return "trace"
    if (target / "metrics.jsonl").is_file():
        return "run"
    if (target / "zarr.json").is_file():
        return "dataset"
    if (target / "metrics.json").is_file() or (target.is_file() and target.suffix == ".json"):
        return "eval"
    raise HrmError(f"{target} is neither a dataset (no zarr.json), a run directory (no metrics.jsonl) "
                   f"nor an eval output (no metrics.json)")


def show(
    target: Annotated[Optional[Path], typer.Argument(
        metavar="TARGET",
        help="A dataset directory, a run directory, an `hrm eval --out` folder (its per-segment curve) or an "
             "`hrm trace --out` folder (its pictures).")] = None,
    split: Annotated[Optional[str], typer.Option(metavar="SPLIT", help="Split of the example (default: test).")] = None,
    index: Annotated[Optional[int], typer.Option(help="Example row in the split (default: 0).")] = None,
    task: Annotated[Optional[str], typer.Option(
        metavar="TASK", help="ARC task (identifier name): all its pairs.")] = None,
    predictions: Annotated[Optional[Path], typer.Option(
        metavar="FILE",
        help="Predictions table from `hrm eval --predictions`: show the answers beside the truth.")] = None,
    data: Annotated[Optional[Path], typer.Option(
        "--data", "-d", metavar="DIR", help="Dataset of the predictions.")] = None,
    png: Annotated[Optional[Path], typer.Option(
        metavar="FILE",
        help="Also write a picture here, in the format its name ends in: .png, .svg or .pdf (runs: default "
             "RUN/curves.png; eval folders: EVAL/segments.png).")] = None,
    as_json: Json = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --png picture (only one that hrm drew).")] = False,
    quiet: Quiet = False,
) -> None:
    """Look at things: a dataset example or ARC task, a model's predictions, a run's training curves."""
    set_quiet(quiet)
    if png is not None:  # before any work: a name without a picture suffix, a folder, a file not ours
        from hrm.common.outputs import check_output
        from hrm.show.charts import PICTURE_OUTPUT, picture_suffix
        if not png.is_dir():
            picture_suffix(png)
        check_output(png, PICTURE_OUTPUT, force=force)
    if index is not None and task is not None:
        raise UsageError("give --index or --task, not both")
    if predictions is not None:
        data = data or target
        if data is None:
            raise UsageError("--predictions needs --data DIR, the dataset the predictions were made on")
        from hrm.eval.show import prediction_figure
        _output(prediction_figure(predictions, data, split=split, index=index, task=task), png, as_json, force)
        return
    target = target or data
    if target is None:
        raise UsageError("give a dataset or run directory to show (see hrm show --help)")
    kind = _kind(target)
    if kind == "trace":
        if task is not None or split is not None or png is not None:
            raise HrmError(f"--split/--task/--png do not apply to a trace folder: {target}'s pictures are redrawn "
                           f"inside it (--index I adds the steps of traced example I)")
        _trace(target, index, data, as_json)
        return
    if kind == "eval":
        if index is not None or task is not None or split is not None:
            raise UsageError(f"--split/--index/--task apply to datasets; {target} is an eval output")
        folder = target if target.is_dir() else target.parent
        _segment_curve(target, png or folder / "segments.png", as_json, force=force or png is None)
        return
    if kind == "run":
        if index is not None or task is not None or split is not None:
            raise UsageError(f"--split/--index/--task apply to datasets; {target} is a run directory")
        # The run's own RUN/curves.png is redrawn each time (it is hrm's, and the run is live);
        # a picture the user names follows the rule of every output.
        _curves(target, png or target / "curves.png", as_json, force=force or png is None)
        return
    from hrm.show.views import arc_task_figure, example_figure
    figure = arc_task_figure(target, task) if task else example_figure(target, split, index or 0)
    _output(figure, png, as_json, force)


def _output(figure: "Figure", png: Optional[Path], as_json: bool, force: bool) -> None:
    from hrm.show.render import figure_json, figure_text
    if png is not None:
        from hrm.show.render_png import write_figure_picture
        log(f"wrote {write_figure_picture(figure, png, force=force)}")
    if as_json:
        typer.echo(json.dumps({**figure_json(figure), "png": str(png) if png else None}))
    else:
        typer.echo(figure_text(figure))


def _segment_curve(target: Path, png: Path, as_json: bool, *, force: bool) -> None:
    from hrm.analysis.curves import format_segment_curve, plot_segment_curve, read_segment_curve
    summary = read_segment_curve(target)
    plot_segment_curve(summary, png, title=str(target), force=force)
    log(f"wrote {png}")
    if as_json:
        typer.echo(json.dumps({"eval": str(target), "png": str(png),
                               "accuracy_by_segment": summary["accuracy_by_segment"],
                               "protocol": summary.get("protocol")}))
    else:
        typer.echo(format_segment_curve(summary))


def _trace(folder: Path, index: Optional[int], data: Optional[Path], as_json: bool) -> None:
    from hrm.analysis.trace_pictures import draw_all
    from hrm.analysis.trace_files import read_summary
    from hrm.analysis.trace_report import format_summary
    summary = read_summary(folder)
    indices = [index] if index is not None else summary["protocol"]["index"]
    written = draw_all(folder, summary, indices, data=data)
    for path in written:
        log(f"wrote {path}")
    if as_json:
        typer.echo(json.dumps({"trace": str(folder), "pictures": [str(p) for p in written], **summary}))
    else:
        typer.echo(format_summary(summary))


def _curves(run: Path, png: Path, as_json: bool, *, force: bool) -> None:
    from hrm.analysis.curves import format_last, last_values, plot_curves, read_metrics
    records = read_metrics(run)
    last = last_values(records)
    plot_curves(records, png, title=run.name, force=force)
    log(f"wrote {png}")
    if as_json:
        typer.echo(json.dumps({"run": str(run), "png": str(png), "records": len(records), "last": last}))
    else:
        typer.echo(format_last(last))
