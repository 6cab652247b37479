"""Line charts as PNG (training curves, `hrm compare`, the segment and vote-pool curves)."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from hrm.show.render_png import font, require_pillow, save_png


CHART_WIDTH, CHART_HEIGHT = 540, 330
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 70, 16, 44, 40  # plot area inset inside a chart
AXIS, GRID, TEXT = "#000000", "#E0E0E0", "#000000"
SERIES_COLOURS = ("#0074D9", "#FF4136", "#2ECC40")
HEADER_HEIGHT = 28
LEGEND_LINE = 16  # pixels per line of a legend that wraps


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


def plot_chart(out: str | os.PathLike, header: str, title: str, series: list[tuple[str, str, list]], *,
               x_label: str, force: bool = False) -> Path:
    """A PNG of one chart (`_draw_chart`'s series) under a header line."""
    PIL = require_pillow()
    image = PIL.Image.new("RGB", (CHART_WIDTH, HEADER_HEIGHT + CHART_HEIGHT), "#FFFFFF")
    draw = PIL.ImageDraw.Draw(image)
    draw.text((10, 7), header, fill=TEXT, font=font(14))
    _draw_chart(draw, 0, HEADER_HEIGHT, title, series, x_label=x_label)
    return save_png(image, out, force=force)
