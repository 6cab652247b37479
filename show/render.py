"""Text renderings of puzzles (`hrm inspect`, `hrm show`): sudoku, maze and ARC grids.

Grids are decoded first (sudoku digits 0-9 with 0 = blank, maze tokens, ARC colours 0-9) and
then drawn either as plain text or with ANSI colours. A `Figure` (rows of titled `Panel`s) is the
common description that both this module and `hrm.show.render_png` draw, so a view is built once.
Wrong cells (a prediction against the truth) are coloured inline with ANSI; plain text cannot
colour, so it adds a separate "wrong" block with `X` at every wrong cell.
"""
from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hrm.augment.arc import arc_grid_from_tokens  # noqa: F401  (the SPEC 6 crop; re-exported for callers)

# Maze tokens (SPEC 3): 1 '#' wall, 2 ' ' open, 3 'S', 4 'G', 5 'o' path; 0 (pad) renders as a space.
MAZE_CHARS = " # SGo"
ARC_PALETTE_256 = (16, 32, 203, 41, 220, 248, 199, 208, 117, 88)  # nearest xterm colours of ARC 0-9

_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_SUDOKU_FILLED = "\x1b[36m"  # cyan: digits the solver (or the model) filled in
_WRONG = "\x1b[41;97m"  # white on red
_MAZE_STYLE = {"#": "\x1b[90m", "S": "\x1b[1;32m", "G": "\x1b[1;31m", "o": "\x1b[1;33m"}
_ARC_LIGHT = (4, 5, 8)  # colours on which a wrong-cell mark is drawn black instead of white
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def use_colour() -> bool:
    """ANSI colours only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def arc_grid_from_canvas(tokens: np.ndarray) -> np.ndarray:
    """Decode an ARC canvas written by the builder, wherever the grid sits: every grid cell is a
    colour token and nothing else is, so the grid is the bounding box of the colour tokens.
    (Training examples are translated; `arc_grid_from_tokens` only finds top-left grids.)"""
    side = int(math.isqrt(tokens.size))
    canvas = np.asarray(tokens).reshape(side, side)
    rows, cols = np.nonzero((canvas >= 2) & (canvas <= 11))
    if rows.size == 0:
        return np.zeros((0, 0), np.int64)
    return canvas[rows.min():rows.max() + 1, cols.min():cols.max() + 1].astype(np.int64) - 2


def sudoku_digits(tokens: np.ndarray) -> np.ndarray:
    """Sudoku tokens (digit + 1; blank = 1) -> square grid of digits, 0 = blank."""
    side = int(math.isqrt(np.asarray(tokens).size))
    return np.clip(np.asarray(tokens, np.int64).reshape(side, side) - 1, 0, None)


def _style(text: str, style: str, colour: bool) -> str:
    return f"{style}{text}{_RESET}" if colour and style else text


def _sudoku_layout(cells: list[list[str]]) -> str:
    """Lay out one string per cell with `|` between stacks and a rule between bands."""
    side = len(cells)
    box = int(math.isqrt(side))
    lines = []
    for r, row in enumerate(cells):
        if r and r % box == 0:
            lines.append("+".join(["-" * (2 * box + 1)] * box)[1:-1])
        lines.append(" | ".join(" ".join(row[c:c + box]) for c in range(0, side, box)))
    return "\n".join(lines)


def sudoku_text(digits: np.ndarray, clues: np.ndarray | None = None, wrong: np.ndarray | None = None,
                colour: bool = False) -> str:
    """A sudoku grid with box separators; with colour, clues bold and filled digits cyan."""
    cells = []
    for r, row in enumerate(digits):
        cells.append([])
        for c, digit in enumerate(row):
            digit = int(digit)
            style = ""
            if wrong is not None and wrong[r, c]:
                style = _WRONG
            elif digit and clues is not None:
                style = _BOLD if clues[r, c] else _SUDOKU_FILLED
            cells[-1].append(_style("." if digit == 0 else str(digit), style, colour))
    return _sudoku_layout(cells)


def maze_text(grid: np.ndarray, wrong: np.ndarray | None = None, colour: bool = False) -> str:
    """A maze as characters `#`, ` `, `S`, `G`, `o` (one per cell; `?` for a non-maze token)."""
    lines = []
    for r, row in enumerate(grid):
        chars = []
        for c, token in enumerate(row):
            char = MAZE_CHARS[int(token)] if 0 <= token < len(MAZE_CHARS) else "?"
            style = _WRONG if wrong is not None and wrong[r, c] else _MAZE_STYLE.get(char, "")
            chars.append(_style(char, style, colour))
        lines.append("".join(chars))
    return "\n".join(lines)


def arc_text(grid: np.ndarray, wrong: np.ndarray | None = None, colour: bool = False) -> str:
    """ARC colours: two-space blocks in the 256-colour palette, or digits without colour.
    A wrong cell shows `><` over its colour."""
    if grid.size == 0:
        return "(empty)"
    if not colour:
        return "\n".join(" ".join(str(int(c)) for c in row) for row in grid)
    lines = []
    for r, row in enumerate(grid):
        cells = []
        for c, value in enumerate(row):
            value = int(value)
            background = f"\x1b[48;5;{ARC_PALETTE_256[value]}m" if 0 <= value <= 9 else "\x1b[45m"
            if wrong is not None and wrong[r, c]:
                mark = "\x1b[30m" if value in _ARC_LIGHT else "\x1b[97m"
                cells.append(f"{background}{_BOLD}{mark}><{_RESET}")
            else:
                cells.append(f"{background}  {_RESET}")
        lines.append("".join(cells))
    return "\n".join(lines)


def wrong_text(kind: str, wrong: np.ndarray) -> str:
    """The plain-text stand-in for colour: `X` at wrong cells, `.` elsewhere, laid out like the grid."""
    if kind == "sudoku":
        return _sudoku_layout([["X" if w else "." for w in row] for row in wrong])
    if kind == "maze":
        return "\n".join("".join("X" if w else "." for w in row) for row in wrong)
    return "\n".join(" ".join("X" if w else "." for w in row) for row in wrong) if wrong.size else "(empty)"


def render_sudoku(tokens: np.ndarray) -> str:
    return sudoku_text(sudoku_digits(tokens))


def render_maze(tokens: np.ndarray) -> str:
    side = int(math.isqrt(tokens.size))
    return maze_text(np.asarray(tokens).reshape(side, side))


def render_arc(grid: np.ndarray, colour: bool | None = None) -> str:
    return arc_text(np.asarray(grid), colour=use_colour() if colour is None else colour)


def render_tokens(task: str, tokens: np.ndarray, colour: bool | None = None) -> str:
    """Render one sequence of tokens (an input or a label) as the task's grid."""
    tokens = np.asarray(tokens)
    if task == "sudoku":
        return render_sudoku(tokens)
    if task == "maze":
        return render_maze(tokens)
    if task == "arc":
        return render_arc(arc_grid_from_canvas(tokens), colour)
    raise ValueError(f"unknown task {task!r}")


def side_by_side(blocks: list[str], titles: list[str], gap: int = 4) -> str:
    """Place multi-line text blocks next to each other (widths measured without ANSI codes)."""
    split = [[title, *block.splitlines()] for title, block in zip(titles, blocks)]
    widths = [max(len(_ANSI.sub("", line)) for line in lines) for lines in split]
    height = max(len(lines) for lines in split)
    out = []
    for i in range(height):
        parts = []
        for lines, width in zip(split, widths):
            line = lines[i] if i < len(lines) else ""
            parts.append(line + " " * (width - len(_ANSI.sub("", line))))
        out.append((" " * gap).join(parts).rstrip())
    return "\n".join(out)


# ----------------------------------------------------------------------------- figures


@dataclass
class Panel:
    """One titled grid. `grid`: sudoku digits (0 = blank), maze tokens or ARC colours.
    `clues` (sudoku) marks given digits; `wrong` marks cells that differ from the truth (or
    break a rule); `changed` cells that changed since the panel before (the PNG frames them)."""

    title: str
    kind: str
    grid: np.ndarray
    clues: np.ndarray | None = None
    wrong: np.ndarray | None = None
    changed: np.ndarray | None = None


@dataclass
class Figure:
    """What `hrm show` displays: a title, rows of panels side by side, and notes below."""

    title: str
    rows: list[list[Panel]]
    notes: list[str] = field(default_factory=list)


def panel_text(panel: Panel, colour: bool) -> str:
    if panel.kind == "sudoku":
        return sudoku_text(panel.grid, panel.clues, panel.wrong, colour)
    if panel.kind == "maze":
        return maze_text(panel.grid, panel.wrong, colour)
    if panel.kind == "arc":
        return arc_text(panel.grid, panel.wrong, colour)
    raise ValueError(f"unknown panel kind {panel.kind!r}")


def figure_text(figure: Figure, colour: bool | None = None) -> str:
    colour = use_colour() if colour is None else colour
    parts = [figure.title] if figure.title else []
    for row in figure.rows:
        blocks, titles = [], []
        for panel in row:
            blocks.append(panel_text(panel, colour))
            titles.append(panel.title)
            if not colour and panel.wrong is not None:
                blocks.append(wrong_text(panel.kind, panel.wrong))
                titles.append("wrong")
        parts.append(side_by_side(blocks, titles))
    text = "\n\n".join(parts)
    return text + "\n\n" + "\n".join(figure.notes) if figure.notes else text


def figure_json(figure: Figure) -> dict[str, Any]:
    """The figure as one JSON-ready object (grids as nested lists)."""
    def panel(p: Panel) -> dict[str, Any]:
        out: dict[str, Any] = {"title": p.title, "kind": p.kind, "grid": np.asarray(p.grid).tolist()}
        if p.clues is not None:
            out["clues"] = np.asarray(p.clues).astype(int).tolist()
        if p.wrong is not None:
            out["wrong_cells"] = int(np.count_nonzero(p.wrong))
        if p.changed is not None:
            out["changed_cells"] = int(np.count_nonzero(p.changed))
        return out
    return {"title": figure.title, "rows": [[panel(p) for p in row] for row in figure.rows],
            "notes": figure.notes}
