"""Every chart hrm draws (training curves, `hrm compare`, the segment and vote-pool curves) is a
matplotlib figure made and saved here.

- `new_figure` makes a figure without pyplot: no global state and no display, the Agg canvas.
- `save_figure` writes it in the format its file name asks for (`PICTURE_SUFFIXES`), marked as
  hrm's (PNG text chunk Software, SVG/PDF metadata Creator), under the one output rule
  (hrm.common.outputs); `is_hrm_picture` recognises the mark, so --force replaces only our pictures.
- `set_scale` puts an axis on a log scale where its values span decades, `fraction_axis` pins
  an accuracy axis to [0, 1], `run_styles` keeps overlapping runs distinguishable, and
  `mean_band` draws a mean curve with its ± sample std band.

matplotlib is imported inside the functions that draw, so that `hrm --help` starts fast.
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from hrm.common import HrmError, UsageError
from hrm.common.outputs import OutputKind, output_file

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PICTURE_SUFFIXES = (".png", ".svg", ".pdf")
MARK = "hrm"  # the Software (PNG) or Creator (SVG, PDF) of every picture hrm writes
PANEL_SIZE = (5.4, 3.3)  # inches of one chart; at DPI, 540 x 330 pixels
DPI = 100
LOG_SPAN = 100  # a log axis when the largest value is more than this times the smallest
COLOURS = ("#0074D9", "#FF4136", "#2ECC40", "#FF851B", "#B10DC9", "#39CCCC", "#85144B", "#3D9970",
           "#001F3F", "#F012BE", "#AAAAAA", "#FFDC00")
LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def picture_suffix(path: str | os.PathLike) -> str:
    """The format of a picture from its file name; a usage error for any other suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in PICTURE_SUFFIXES:
        raise UsageError(f"cannot tell the picture format of {path}: give a file name ending in "
                         f"{', '.join(PICTURE_SUFFIXES[:-1])} or {PICTURE_SUFFIXES[-1]}")
    return suffix


_SVG_MARK = re.compile(rb"<dc:creator>\s*<cc:Agent>\s*<dc:title>" + MARK.encode() + rb"</dc:title>")
_PDF_MARK = re.compile(rb"/Creator\s*\(" + MARK.encode() + rb"\)")


def is_hrm_picture(path: Path) -> bool:
    """Whether `path` is a picture hrm wrote: a PNG whose Software text chunk, or an SVG or PDF
    whose Creator, is hrm (the suffix does not matter, the content does)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8192)
            if head.startswith(b"\x89PNG\r\n\x1a\n"):
                from PIL import Image
                with Image.open(path) as image:
                    return image.format == "PNG" and image.info.get("Software") == MARK
            if head.startswith(b"%PDF-"):
                # matplotlib writes the document information at the end, before the xref table
                handle.seek(max(0, os.fstat(handle.fileno()).st_size - 65536))
                return _PDF_MARK.search(handle.read()) is not None
            return b"<svg" in head and _SVG_MARK.search(head) is not None  # metadata comes first
    except (OSError, ValueError, ImportError):
        return False


PICTURE_OUTPUT = OutputKind("a picture", directory=False, written_by_hrm=is_hrm_picture)


def new_figure(rows: int = 1, cols: int = 1, *, title: str = "") -> tuple["Figure", list["Axes"]]:
    """A figure of rows x cols charts (PANEL_SIZE each, laid out by matplotlib's constrained
    layout, so titles and legends never overlap) and its Axes in reading order."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(PANEL_SIZE[0] * cols, PANEL_SIZE[1] * rows + 0.3), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, cols, squeeze=False).ravel().tolist()
    if title:
        figure.suptitle(title, x=0.01, ha="left", fontsize="medium")
    for ax in axes:
        ax.grid(True, color="#E0E0E0", linewidth=0.8)
        ax.set_axisbelow(True)
    return figure, axes


def save_figure(figure: "Figure", path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write `figure` to `path` in the format its suffix names, marked as hrm's, through a
    temporary sibling and a rename (never a half-written picture), under the output rule."""
    suffix = picture_suffix(path)
    # No dates and a fixed id salt: the same chart gives the same bytes (diffable docs pictures).
    metadata = {".png": {"Software": MARK}, ".svg": {"Creator": MARK, "Date": None},
                ".pdf": {"Creator": MARK, "CreationDate": None}}[suffix]
    import matplotlib

    try:
        with output_file(path, PICTURE_OUTPUT, force=force) as tmp, \
                matplotlib.rc_context({"svg.hashsalt": MARK}):
            figure.savefig(tmp, format=suffix[1:], metadata=metadata)
    except OSError as error:
        raise HrmError(f"cannot write {path}: {error.strerror or error}") from None
    return Path(path)


def image_figure(pixels: Any) -> "Figure":
    """A figure that is exactly the image `pixels` (an H x W x 3 array) at DPI, nothing else: how
    a Pillow picture (puzzle grids) is written as SVG or PDF."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    height, width = pixels.shape[:2]
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    figure.figimage(pixels, resize=False)
    return figure


def use_log_scale(values: Iterable[float]) -> bool:
    """A log axis for values that span decades: all positive, and max/min above LOG_SPAN."""
    values = [v for v in values if math.isfinite(v)]
    return bool(values) and min(values) > 0 and max(values) / min(values) > LOG_SPAN


def set_scale(ax: "Axes", values: Iterable[float], axis: str = "y") -> None:
    """Log where `values` span decades; otherwise linear from zero (every quantity charted here
    is >= 0), with a unit range when all values are zero (no axis around 0 with a "-0" tick)."""
    values = [v for v in values if math.isfinite(v)]
    set_scale_to, set_limits = (ax.set_yscale, ax.set_ylim) if axis == "y" else (ax.set_xscale, ax.set_xlim)
    if use_log_scale(values):
        set_scale_to("log")
    elif values and min(values) >= 0:
        set_limits(0, None if max(values) > 0 else 1)
        ax.ticklabel_format(axis=axis, style="sci", scilimits=(-3, 4))  # 1e-4, not 0.00010


def legend_below(figure: "Figure", handles: list, labels: list[str]) -> None:
    """One legend for all of `figure`'s charts (a run's style is the same in each), below them, in
    as many columns as the figure's width holds (about 50 characters of label per chart)."""
    if handles:
        line = round(50 * figure.get_figwidth() / PANEL_SIZE[0])
        figure.legend(handles, labels, loc="outside lower center", fontsize="small",
                      ncols=max(1, min(len(labels), line // max(len(label) for label in labels))))


def fraction_axis(ax: "Axes") -> None:
    """An accuracy axis: 0 to 1 whatever the data (all-zero curves sit on the floor, still seen)."""
    ax.set_ylim(-0.02, 1.02)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])


def run_styles(count: int) -> list[dict[str, Any]]:
    """Line styles for `count` runs that stay distinguishable when curves coincide: each run its
    colour, dash pattern and hollow marker, and runs drawn later thinner and on top, so a curve
    identical to an earlier one shows as a thin line inside a thicker one."""
    styles = []
    for i in range(count):
        weight = (count - 1 - i) / (count - 1) if count > 1 else 1.0  # 1 for the first run, 0 for the last
        styles.append({"color": COLOURS[i % len(COLOURS)], "linestyle": LINESTYLES[i % len(LINESTYLES)],
                       "marker": MARKERS[i % len(MARKERS)], "linewidth": 1.0 + 2.5 * weight,
                       "markersize": 4.0 + 5.0 * weight, "markerfacecolor": "none", "zorder": 2 + i})
    return styles


def markevery(points: int, run: int, marks: int = 12) -> int | tuple[int, int]:
    """Mark about `marks` points of a long curve, each run starting at another point (spread by the
    golden ratio), so that the markers of coinciding curves do not sit on each other."""
    every = max(1, points // marks)
    return (int(run * every * 0.618) % every, every) if every > 1 else 1


def plot_line(ax: "Axes", points: Sequence[tuple[float, float]], *, label: str | None = None,
              run: int | None = None, **style: Any) -> None:
    """One curve of (x, y) points; a single point is drawn as its marker. With `run` (one of
    several runs in `run_styles`) a long curve marks only some of its points (`markevery`)."""
    if not points:
        return
    xs, ys = zip(*points)
    every = None if run is None else markevery(len(points), run)
    ax.plot(xs, ys, label=label, markevery=every, clip_on=len(points) > 1, **style)


def mean_band(ax: "Axes", curves: Sequence[Sequence[tuple[float, float]]], *, label: str | None = None,
              run: int | None = None, **style: Any) -> list[tuple[float, float, float]]:
    """Draw the mean of several runs' curves at the x every one of them has, with a shaded band of
    ± the sample standard deviation (none for a single run: its spread is undefined). Returns
    [(x, mean, std or NaN)]."""
    tables = [dict(curve) for curve in curves]
    xs = sorted(set.intersection(*(set(t) for t in tables))) if tables else []
    rows = []
    for x in xs:
        values = [t[x] for t in tables]
        mean = math.fsum(values) / len(values)
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else math.nan
        rows.append((x, mean, std))
    if not rows:
        return rows
    plot_line(ax, [(x, mean) for x, mean, _ in rows], label=label, run=run, **style)
    if len(tables) > 1:
        ax.fill_between([x for x, _, _ in rows], [m - s for _, m, s in rows], [m + s for _, m, s in rows],
                        color=style.get("color"), alpha=0.18, linewidth=0, zorder=1)
    return rows
