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
import math
import os
from pathlib import Path
from typing import Any, Iterable

from hrm.common import HrmError, log
from hrm.show.render_png import font, require_pillow, save_png

METRICS = ("lr", "lm_loss", "q_halt_loss", "q_continue_loss", "accuracy", "exact_accuracy",
           "q_halt_accuracy", "steps", "examples_per_s")
CHARTS = (("losses", ("lm_loss", "q_halt_loss", "q_continue_loss"), ("train", "test")),
          ("accuracy", ("accuracy", "exact_accuracy", "q_halt_accuracy"), ("train", "test")),
          ("mean ACT steps", ("steps",), ("train", "test")),
          ("learning rate", ("lr",), ("train",)))
SERIES_COLOURS = ("#0074D9", "#FF4136", "#2ECC40")
CHART_WIDTH, CHART_HEIGHT = 540, 330
HEADER_HEIGHT = 28
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 70, 16, 44, 40  # plot area inset inside a chart
AXIS, GRID, TEXT = "#000000", "#E0E0E0", "#000000"
LEGEND_LINE = 16  # pixels per line of a legend that wraps


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


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten) covering [low, high]."""
    if not high > low:
        low, high = low - (abs(low) or 1) * 0.5, high + (abs(high) or 1) * 0.5
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value < high + step * 0.999:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _series(records: list[dict[str, Any]], split: str, metric: str) -> list[tuple[float, float]]:
    points = [(r["step"], float(r[metric])) for r in records if r["split"] == split and _finite(r.get(metric))]
    return sorted(points)


def legend_positions(labels: list[str]) -> list[tuple[int, int]]:
    """(x, y) of each legend entry from a chart's top-left corner: in a row below the title,
    wrapped onto further lines of LEGEND_LINE pixels when they do not fit (many runs)."""
    text_font = font()
    x, y, positions = PLOT_LEFT, 24, []
    for label in labels:
        width = 26 + int(text_font.getlength(label))
        if x > PLOT_LEFT and x + width > CHART_WIDTH - PLOT_RIGHT:
            x, y = PLOT_LEFT, y + LEGEND_LINE
        positions.append((x, y))
        x += width
    return positions


def _draw_chart(draw: Any, x0: int, y0: int, title: str, series: list[tuple[str, str, list]],
                x_label: str = "step", height: int = CHART_HEIGHT,
                colours: tuple[str, ...] = SERIES_COLOURS) -> None:
    """One chart at (x0, y0): axes with round ticks, grid lines, each (label, split, points); one
    of `colours` per label, in turn."""
    text_font = font()
    left, top = x0 + PLOT_LEFT, y0 + PLOT_TOP
    right, bottom = x0 + CHART_WIDTH - PLOT_RIGHT, y0 + height - PLOT_BOTTOM
    draw.text((x0 + PLOT_LEFT, y0 + 4), title, fill=TEXT, font=font(15))
    labels = list(dict.fromkeys(label for label, _, _ in series))  # one colour per metric (or run)
    positions = legend_positions(labels)
    for i, (label, (x, y)) in enumerate(zip(labels, positions)):
        colour = colours[i % len(colours)]
        draw.line([(x0 + x, y0 + y + 7), (x0 + x + 14, y0 + y + 7)], fill=colour, width=3)
        draw.text((x0 + x + 18, y0 + y), label, fill=TEXT, font=text_font)
    top += positions[-1][1] - 24 if positions else 0  # the plot starts below the legend's extra lines
    points = [p for _, _, pts in series for p in pts]
    if not points:
        draw.text((left + 10, (top + bottom) // 2), "no data", fill=TEXT, font=text_font)
        return
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x_ticks = nice_ticks(min(0, min(xs)), max(xs), 5)
    y_ticks = nice_ticks(min(0, min(ys)), max(ys), 5)  # from zero: every metric here is >= 0
    x_lo, x_hi, y_lo, y_hi = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]

    def at(x: float, y: float) -> tuple[float, float]:
        return (left + (x - x_lo) / (x_hi - x_lo) * (right - left),
                bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top))

    for tick in y_ticks:
        _, y = at(x_lo, tick)
        draw.line([(left, y), (right, y)], fill=GRID)
        label = f"{tick:.3g}"
        draw.text((left - 6, y), label, fill=TEXT, font=text_font, anchor="rm")
    for tick in x_ticks:
        x, _ = at(tick, y_lo)
        draw.line([(x, bottom), (x, bottom + 4)], fill=AXIS)
        draw.text((x, bottom + 6), f"{tick:.6g}", fill=TEXT, font=text_font, anchor="mt")
    draw.text(((left + right) // 2, bottom + 22), x_label, fill=TEXT, font=text_font, anchor="mt")
    draw.rectangle([left, top, right, bottom], outline=AXIS)
    for label, split, pts in series:
        colour = colours[labels.index(label) % len(colours)]
        xy = [at(x, y) for x, y in pts]
        if len(xy) > 1:
            draw.line(xy, fill=colour, width=2 if split == "train" else 1, joint="curve")
        if split != "train" or len(xy) == 1:
            for x, y in xy:
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)


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


def plot_chart(out: str | os.PathLike, header: str, title: str, series: list[tuple[str, str, list]], *,
               x_label: str, force: bool = False) -> Path:
    """A PNG of one chart (`_draw_chart`'s series) under a header line."""
    PIL = require_pillow()
    image = PIL.Image.new("RGB", (CHART_WIDTH, HEADER_HEIGHT + CHART_HEIGHT), "#FFFFFF")
    draw = PIL.ImageDraw.Draw(image)
    draw.text((10, 7), header, fill=TEXT, font=font(14))
    _draw_chart(draw, 0, HEADER_HEIGHT, title, series, x_label=x_label)
    return save_png(image, out, force=force)


def plot_segment_curve(summary: dict[str, Any], out: str | os.PathLike, title: str = "", *,
                       force: bool = False) -> Path:
    """One chart: exact accuracy (pass@1) after each segment, the inference-time scaling curve."""
    protocol = summary.get("protocol") or {}
    header = f"{title}  " if title else ""
    header += f"ranker {protocol.get('ranker', 'votes')}, {protocol.get('items', '?')} items"
    points = [(i + 1, float(v)) for i, v in enumerate(summary["accuracy_by_segment"])]
    return plot_chart(out, header, "exact accuracy by segment", [("pass@1", "test", points)], x_label="segment",
                      force=force)
