"""Pictures of puzzles drawn with Pillow: the same `Figure`s that `hrm.show.render` prints
(written as PNG, or as SVG/PDF holding the same raster).

Geometry (pixels) is fixed per kind so that pictures are comparable and tests can find cells:
a grid of h x w cells is drawn as boundary lines and cells alternating along each axis, with
`line_widths(kind, n)` giving the n + 1 boundary widths (ARC 1 px grey lines; sudoku 1 px, 3 px
between boxes; maze a 1 px frame only: walls are cells). A figure puts a title line on top, then each row of
panels (a title line above every panel), with MARGIN around and GAP between panels and rows.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hrm.common import HrmError
from hrm.common.outputs import output_file
from hrm.show.charts import MARK, PICTURE_OUTPUT, image_figure, picture_suffix, save_figure
from hrm.show.render import Figure, Panel

if TYPE_CHECKING:  # Pillow is imported lazily so that the rest of hrm works without it
    from PIL import Image

# The standard ARC palette (as the ARC web viewer and Kaggle draw it), colours 0-9.
ARC_PALETTE = ("#000000", "#0074D9", "#FF4136", "#2ECC40", "#FFDC00",
               "#AAAAAA", "#F012BE", "#FF851B", "#7FDBFF", "#870C25")
ARC_LINE = "#555555"
MAZE_COLOURS = {0: "#FF00FF", 1: "#2B2B2B", 2: "#FFFFFF", 3: "#2ECC40", 4: "#FF4136", 5: "#FF851B"}
MAZE_FRAME = "#888888"
CHANGED = "#9400D3"  # the frame of a changed cell: violet, in no task's palette
UNKNOWN = "#FF00FF"  # a token outside the task's vocabulary (e.g. a predicted pad)
SUDOKU = {"line": "#999999", "box_line": "#000000", "clue_bg": "#E4E4E4", "clue": "#000000",
          "filled_bg": "#FFFFFF", "filled": "#0074D9", "wrong_bg": "#FFC8C8", "wrong": "#C00000"}
CELL = {"sudoku": 32, "maze": 12, "arc": 16}
BACKGROUND = "#FFFFFF"
TEXT = "#000000"
MARGIN = 10
GAP = 16
TITLE_HEIGHT = 18
FONT_SIZE = 13


def require_pillow() -> Any:
    """The PIL package, or a one-line error saying how to get it."""
    try:
        import PIL.Image
        import PIL.ImageDraw
        import PIL.ImageFont
        import PIL.PngImagePlugin
    except ImportError:
        raise HrmError("PNG output needs Pillow: pip install 'pillow>=10.1'") from None
    return PIL


def font(size: int = FONT_SIZE) -> Any:
    """Pillow's bundled scalable font (no system fonts needed); a bitmap font without FreeType."""
    PIL = require_pillow()
    try:
        return PIL.ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):
        return PIL.ImageFont.load_default()


def rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def line_widths(kind: str, n: int) -> list[int]:
    """Widths of the n + 1 boundary lines along one axis of an n-cell grid."""
    if kind == "arc":
        return [1] * (n + 1)
    if kind == "sudoku":
        box = int(math.isqrt(n))
        return [3 if i % box == 0 else 1 for i in range(n + 1)]
    return [1] + [0] * (n - 1) + [1] if n else [1]  # maze: walls are cells; only a frame


def cell_origins(kind: str, n: int) -> list[int]:
    """Pixel offset of each cell's first pixel along one axis, plus the grid's total extent."""
    widths, cell = line_widths(kind, n), CELL[kind]
    origins, position = [], 0
    for i in range(n):
        position += widths[i]
        origins.append(position)
        position += cell
    return origins + [position + widths[n]]


def _contrast(colour: str) -> str:
    r, g, b = rgb(colour)
    return "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#FFFFFF"


def _cross(draw: Any, x: int, y: int, cell: int, colour: str) -> None:
    """The wrong-cell mark: a cross from corner to corner, inset so the cell colour stays visible."""
    inset, width = max(2, cell // 6), max(1, cell // 8)
    draw.line([(x + inset, y + inset), (x + cell - 1 - inset, y + cell - 1 - inset)], fill=colour, width=width)
    draw.line([(x + inset, y + cell - 1 - inset), (x + cell - 1 - inset, y + inset)], fill=colour, width=width)


def _frame(draw: Any, x: int, y: int, cell: int) -> None:
    """The changed-cell mark: a frame along the cell's edge, leaving its inside as it is."""
    width = max(2, cell // 8)
    draw.rectangle([x, y, x + cell - 1, y + cell - 1], outline=CHANGED, width=width)


def panel_image(panel: Panel) -> "Image.Image":
    """One grid as an image of exactly cell_origins(...)[-1] pixels each way."""
    PIL = require_pillow()
    height, width = panel.grid.shape
    ys, xs = cell_origins(panel.kind, height), cell_origins(panel.kind, width)
    cell = CELL[panel.kind]
    lines = {"arc": ARC_LINE, "sudoku": SUDOKU["line"], "maze": MAZE_FRAME}[panel.kind]
    image = PIL.Image.new("RGB", (max(1, xs[-1]), max(1, ys[-1])), lines)
    draw = PIL.ImageDraw.Draw(image)
    if panel.kind == "sudoku":
        _draw_box_lines(draw, panel.grid.shape[0], xs, ys)
    digit_font = font(int(cell * 0.7)) if panel.kind == "sudoku" else None
    for r in range(height):
        for c in range(width):
            x, y, value = xs[c], ys[r], int(panel.grid[r, c])
            wrong = panel.wrong is not None and bool(panel.wrong[r, c])
            if panel.kind == "sudoku":
                clue = panel.clues is not None and bool(panel.clues[r, c])
                background = SUDOKU["wrong_bg"] if wrong else SUDOKU["clue_bg"] if clue else SUDOKU["filled_bg"]
                draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=background)
                if value:
                    ink = SUDOKU["wrong"] if wrong else SUDOKU["clue"] if clue else SUDOKU["filled"]
                    draw.text((x + cell / 2, y + cell / 2), str(value), fill=ink, font=digit_font, anchor="mm")
                if panel.changed is not None and panel.changed[r, c]:
                    _frame(draw, x, y, cell)
                continue
            if panel.kind == "arc":
                colour = ARC_PALETTE[value] if 0 <= value <= 9 else UNKNOWN
            else:
                colour = MAZE_COLOURS.get(value, UNKNOWN)
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=colour)
            if wrong:
                _cross(draw, x, y, cell, _contrast(colour))
            if panel.changed is not None and panel.changed[r, c]:
                _frame(draw, x, y, cell)
    return image


def _draw_box_lines(draw: Any, n: int, xs: list[int], ys: list[int]) -> None:
    """Thick box boundaries of a sudoku: paint the 3 px lines black (cells are painted after)."""
    widths = line_widths("sudoku", n)
    for i, w in enumerate(widths):
        if w < 3:
            continue
        start_x = xs[i] - w if i < n else xs[-1] - w
        start_y = ys[i] - w if i < n else ys[-1] - w
        draw.rectangle([start_x, 0, start_x + w - 1, ys[-1] - 1], fill=SUDOKU["box_line"])
        draw.rectangle([0, start_y, xs[-1] - 1, start_y + w - 1], fill=SUDOKU["box_line"])


def figure_image(figure: Figure) -> "Image.Image":
    """Title, then rows of titled panels. A panel's slot is as wide as its grid or its title,
    whichever is wider; slots are GAP apart, rows GAP apart, all inside MARGIN."""
    PIL = require_pillow()
    text_font = font()
    rows = [[(panel.title, panel_image(panel)) for panel in row] for row in figure.rows]
    slots = [[max(im.width, int(text_font.getlength(title))) for title, im in row] for row in rows]
    row_heights = [TITLE_HEIGHT + max((im.height for _, im in row), default=0) for row in rows]
    texts = [figure.title, *figure.notes]
    width = 2 * MARGIN + max([*(sum(s) + GAP * max(0, len(s) - 1) for s in slots),
                              *(int(text_font.getlength(t)) for t in texts)])
    height = (2 * MARGIN + (TITLE_HEIGHT if figure.title else 0) + sum(row_heights)
              + GAP * max(0, len(rows) - 1) + (GAP + TITLE_HEIGHT * len(figure.notes) if figure.notes else 0))
    image = PIL.Image.new("RGB", (width, height), BACKGROUND)
    draw = PIL.ImageDraw.Draw(image)
    y = MARGIN
    if figure.title:
        draw.text((MARGIN, y), figure.title, fill=TEXT, font=text_font)
        y += TITLE_HEIGHT
    for row, row_slots, row_height in zip(rows, slots, row_heights):
        x = MARGIN
        for (title, panel), slot in zip(row, row_slots):
            draw.text((x, y), title, fill=TEXT, font=text_font)
            image.paste(panel, (x, y + TITLE_HEIGHT))
            x += slot + GAP
        y += row_height + GAP
    for note in figure.notes:
        draw.text((MARGIN, y), note, fill=TEXT, font=text_font)
        y += TITLE_HEIGHT
    return image


def save_image(image: "Image.Image", path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write `image` in the format the suffix of `path` names, under the output rule
    (hrm.common.outputs) and marked as hrm's (hrm.show.charts.is_hrm_picture). A PNG is Pillow's,
    pixel for pixel; SVG and PDF hold that raster, at the same size (via matplotlib)."""
    suffix = picture_suffix(path)
    if suffix != ".png":
        import numpy as np
        return save_figure(image_figure(np.asarray(image.convert("RGB"))), path, force=force)
    PIL = require_pillow()
    info = PIL.PngImagePlugin.PngInfo()
    info.add_text("Software", MARK)
    try:
        with output_file(path, PICTURE_OUTPUT, force=force) as tmp:
            image.save(tmp, format="PNG", pnginfo=info)
    except OSError as error:
        raise HrmError(f"cannot write {path}: {error.strerror or error}") from None
    return Path(path)


def write_figure_picture(figure: Figure, path: str | os.PathLike, *, force: bool = False) -> Path:
    return save_image(figure_image(figure), path, force=force)
