"""Training curves of a run (`hrm show RUN`): read RUN/metrics.jsonl, plot it, report last values.
Also the inference-time scaling curve of an evaluation (`hrm show EVAL`, the folder of `hrm eval
--out`): accuracy_by_segment from EVAL/metrics.json, exact accuracy against segments.

The plot is drawn with Pillow (already needed for puzzle pictures) rather than matplotlib, which
would add ~40 MB of dependencies for four line charts. Layout: a header line, then a 2 x 2 grid of
charts (losses, accuracies, mean ACT steps, learning rate), each CHART_WIDTH x CHART_HEIGHT; train
series are solid lines, test series thin lines with a dot per evaluation.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

from hrm.common import HrmError, log
from hrm.show.charts import (CHART_HEIGHT, CHART_WIDTH, HEADER_HEIGHT, TEXT, _draw_chart, _finite, plot_chart)
from hrm.show.render_png import font, require_pillow, save_png

METRICS = ("lr", "lm_loss", "q_halt_loss", "q_continue_loss", "accuracy", "exact_accuracy",
           "q_halt_accuracy", "steps", "examples_per_s")
CHARTS = (("losses", ("lm_loss", "q_halt_loss", "q_continue_loss"), ("train", "test")),
          ("accuracy", ("accuracy", "exact_accuracy", "q_halt_accuracy"), ("train", "test")),
          ("mean ACT steps", ("steps",), ("train", "test")),
          ("learning rate", ("lr",), ("train",)))


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
    points = [(r["step"], float(r[metric])) for r in records if r["split"] == split and _finite(r.get(metric))]
    return sorted(points)


def plot_curves(records: list[dict[str, Any]], out: str | os.PathLike, title: str = "", *,
                force: bool = False) -> Path:
    """Write the 2 x 2 chart PNG of `records` to `out` (atomically; `force` as for every output)."""
    PIL = require_pillow()
    image = PIL.Image.new("RGB", (2 * CHART_WIDTH, HEADER_HEIGHT + 2 * CHART_HEIGHT), "#FFFFFF")
    draw = PIL.ImageDraw.Draw(image)
    counts = {split: sum(r["split"] == split for r in records) for split in dict.fromkeys(r["split"] for r in records)}
    header = f"{title}  " if title else ""
    header += ", ".join(f"{n} {split} records" for split, n in counts.items())
    header += "  (solid: train; dots: test)"
    draw.text((10, 7), header, fill=TEXT, font=font(14))
    for i, (chart_title, metrics, splits) in enumerate(CHARTS):
        series = [(metric, split, _series(records, split, metric)) for split in splits for metric in metrics]
        series = [s for s in series if s[2]]
        _draw_chart(draw, (i % 2) * CHART_WIDTH, HEADER_HEIGHT + (i // 2) * CHART_HEIGHT, chart_title, series)
    return save_png(image, out, force=force)


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
    if not isinstance(curve, list) or not curve or not all(_finite(v) for v in curve):
        raise HrmError(f"{path} has no accuracy_by_segment (scored from a predictions table, or by an older hrm)")
    return summary


def format_segment_curve(summary: dict[str, Any]) -> str:
    """Segment by segment, the exact accuracy (pass@1 after ranking) as text."""
    curve = summary["accuracy_by_segment"]
    best = max(range(len(curve)), key=lambda i: curve[i])
    lines = [f"{'segment':>7}  pass@1"]
    lines += [f"{i + 1:>7}  {value:6.2%}" + ("  (best)" if i == best else "") for i, value in enumerate(curve)]
    return "\n".join(lines)


def plot_segment_curve(summary: dict[str, Any], out: str | os.PathLike, title: str = "", *,
                       force: bool = False) -> Path:
    """One chart: exact accuracy (pass@1) after each segment, the inference-time scaling curve."""
    protocol = summary.get("protocol") or {}
    header = f"{title}  " if title else ""
    header += f"ranker {protocol.get('ranker', 'votes')}, {protocol.get('items', '?')} items"
    points = [(i + 1, float(v)) for i, v in enumerate(summary["accuracy_by_segment"])]
    return plot_chart(out, header, "exact accuracy by segment", [("pass@1", "test", points)], x_label="segment",
                      force=force)
