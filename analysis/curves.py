"""Training curves of a run (`hrm show RUN`): read RUN/metrics.jsonl, plot it, report last values.
Also the inference-time scaling curve of an evaluation (`hrm show EVAL`, the folder of `hrm eval
--out`): accuracy_by_segment from EVAL/metrics.json, exact accuracy against segments.

The plot (hrm.show.charts, matplotlib) is a 2 x 2 grid of charts: losses, accuracies, mean ACT
steps, learning rate; train series are solid lines, test series dashed with a dot per evaluation.
Losses and the learning rate go on a log axis when they span decades, accuracies on [0, 1].
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from hrm.common import HrmError, log
from hrm.show.charts import COLOURS, fraction_axis, new_figure, plot_line, save_figure, set_scale

if TYPE_CHECKING:
    from matplotlib.figure import Figure

METRICS = ("lr", "lm_loss", "q_halt_loss", "q_continue_loss", "accuracy", "exact_accuracy",
           "q_halt_accuracy", "steps", "examples_per_s")
CHARTS = (("losses", ("lm_loss", "q_halt_loss", "q_continue_loss"), ("train", "test")),
          ("accuracy", ("accuracy", "exact_accuracy", "q_halt_accuracy"), ("train", "test")),
          ("mean ACT steps", ("steps",), ("train", "test")),
          ("learning rate", ("lr",), ("train",)))
SPLIT_STYLE = {"train": {"linestyle": "-", "linewidth": 1.2},
               "test": {"linestyle": "--", "linewidth": 0.9, "marker": "o", "markersize": 3.5}}


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool): a value that can be charted or averaged."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read_metrics(run: str | os.PathLike, *, allow_empty: bool = False) -> list[dict[str, Any]]:
    """The records of RUN/metrics.jsonl. A torn last line (the trainer is writing) is skipped.
    A log without records is an error unless `allow_empty` (a run that has just started)."""
    path = Path(run) / "metrics.jsonl"
    if not Path(run).is_dir():
        raise HrmError(f"run directory {run} does not exist")
    if not path.is_file():
        raise HrmError(f"{run} is not a run directory (no metrics.jsonl)")
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            if number == len(lines) and not text.endswith("\n"):
                log(f"{path}: skipping the unfinished last line {number}")
                continue
            raise HrmError(f"{path}, line {number}: not JSON ({error.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("step"), int) \
                or not isinstance(record.get("split"), str):
            raise HrmError(f"{path}, line {number}: expected an object with an integer \"step\" and a \"split\"")
        records.append(record)
    if not records and not allow_empty:
        raise HrmError(f"{path} holds no metrics yet")
    return records


def last_values(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{split: the split's record with the largest step (the later one on a tie)}."""
    last: dict[str, dict[str, Any]] = {}
    for record in records:
        split = record["split"]
        if split not in last or record["step"] >= last[split]["step"]:
            last[split] = record
    return last


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def format_last(last: dict[str, dict[str, Any]]) -> str:
    """The last values as an aligned table, one row per split."""
    columns = ["split", "step", *(m for m in METRICS if any(m in r for r in last.values()))]
    rows = [columns] + [[split, *(_cell(record.get(c)) for c in columns[1:])] for split, record in last.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def _series(records: list[dict[str, Any]], split: str, metric: str) -> list[tuple[float, float]]:
    points = [(r["step"], float(r[metric])) for r in records if r["split"] == split and is_number(r.get(metric))]
    return sorted(points)


def curves_figure(records: list[dict[str, Any]], title: str = "") -> "Figure":
    """The 2 x 2 charts of a run's `records` (see the module doc)."""
    counts = {split: sum(r["split"] == split for r in records) for split in dict.fromkeys(r["split"] for r in records)}
    header = f"{title}  " if title else ""
    header += ", ".join(f"{n} {split} records" for split, n in counts.items())
    figure, axes = new_figure(2, 2, title=header)
    for ax, (chart_title, metrics, splits) in zip(axes, CHARTS):
        ax.set_title(chart_title, loc="left", fontsize="medium")
        ax.set_xlabel("step")
        values = []
        for split in splits:
            for colour, metric in zip(COLOURS, metrics):
                points = _series(records, split, metric)
                plot_line(ax, points, label=f"{metric} ({split})", color=colour, **SPLIT_STYLE[split])
                values += [y for _, y in points]
        if not values:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center")
            continue
        if chart_title == "accuracy":
            fraction_axis(ax)
        else:
            set_scale(ax, values)
        ax.legend(fontsize="x-small")
    return figure


def plot_curves(records: list[dict[str, Any]], out: str | os.PathLike, title: str = "", *,
                force: bool = False) -> Path:
    """Write the charts of `records` to `out` (.png, .svg or .pdf; atomically; `force` as for every output)."""
    return save_figure(curves_figure(records, title), out, force=force)


def read_segment_curve(target: str | os.PathLike) -> dict[str, Any]:
    """The metrics of an evaluation (a folder written by `hrm eval --out`, or its metrics.json)
    that holds `accuracy_by_segment`; a one-line HrmError otherwise."""
    path = Path(target)
    path = path / "metrics.json" if path.is_dir() else path
    try:
        summary = json.loads(path.read_text()) if path.stat().st_size < 2**24 else None
    except (OSError, ValueError):
        summary = None
    if not isinstance(summary, dict):
        raise HrmError(f"{target} is not an hrm eval output (no readable metrics.json)")
    curve = summary.get("accuracy_by_segment")
    if not isinstance(curve, list) or not curve or not all(is_number(v) for v in curve):
        raise HrmError(f"{path} has no accuracy_by_segment (scored from a predictions table, or by an older hrm)")
    return summary


def format_segment_curve(summary: dict[str, Any]) -> str:
    """Segment by segment, the exact accuracy (pass@1 after ranking) as text."""
    curve = summary["accuracy_by_segment"]
    best = max(range(len(curve)), key=lambda i: curve[i])
    lines = [f"{'segment':>7}  pass@1"]
    lines += [f"{i + 1:>7}  {value:6.2%}" + ("  (best)" if i == best else "") for i, value in enumerate(curve)]
    return "\n".join(lines)


def segment_figure(summary: dict[str, Any], title: str = "") -> "Figure":
    """One chart: exact accuracy (pass@1) after each segment, the inference-time scaling curve."""
    protocol = summary.get("protocol") or {}
    header = f"{title}  " if title else ""
    header += f"ranker {protocol.get('ranker', 'votes')}, {protocol.get('items', '?')} items"
    figure, (ax,) = new_figure(title=header)
    curve = summary["accuracy_by_segment"]
    plot_line(ax, [(i + 1, float(v)) for i, v in enumerate(curve)], label="pass@1", color=COLOURS[0],
              **SPLIT_STYLE["test"])
    ax.set_title("exact accuracy by segment", loc="left", fontsize="medium")
    ax.set_xlabel("segment")
    ax.xaxis.get_major_locator().set_params(integer=True)
    fraction_axis(ax)
    ax.legend(fontsize="x-small")
    return figure


def plot_segment_curve(summary: dict[str, Any], out: str | os.PathLike, title: str = "", *,
                       force: bool = False) -> Path:
    """Write `segment_figure` to `out` (.png, .svg or .pdf)."""
    return save_figure(segment_figure(summary, title), out, force=force)
