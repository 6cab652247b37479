"""Text renderings of examples for `hrm inspect` (and `hrm show`): sudoku, maze and ARC grids."""
from __future__ import annotations

import math
import os
import sys

import numpy as np

from augment.arc import arc_grid_from_tokens  # the SPEC 6 crop, kept next to the encoder

MAZE_CHARS = " # SGo"  # token -> character (reference charset "# SGo" = tokens 1..5); pad 0 -> space
ARC_PALETTE_256 = (0, 21, 196, 40, 226, 248, 201, 208, 51, 88)  # xterm colours of ARC 0-9


def use_colour() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def render_sudoku(tokens: np.ndarray) -> str:
    side = int(math.isqrt(tokens.size))
    box = int(math.isqrt(side))
    grid = np.asarray(tokens).reshape(side, side)
    lines = []
    for r in range(side):
        if r and r % box == 0:
            lines.append("+".join(["-" * (2 * box + 1)] * box)[1:-1])
        cells = []
        for c in range(side):
            if c and c % box == 0:
                cells.append("|")
            token = int(grid[r, c])
            cells.append("." if token <= 1 else str(token - 1))
        lines.append(" ".join(cells))
    return "\n".join(lines)


def render_maze(tokens: np.ndarray) -> str:
    side = int(math.isqrt(tokens.size))
    grid = np.asarray(tokens).reshape(side, side)
    return "\n".join("".join(MAZE_CHARS[int(t)] if 0 <= t < len(MAZE_CHARS) else "?" for t in row)
                     for row in grid)


def render_arc(grid: np.ndarray, colour: bool | None = None) -> str:
    colour = use_colour() if colour is None else colour
    if colour:
        return "\n".join("".join(f"\x1b[48;5;{ARC_PALETTE_256[int(c)]}m  \x1b[0m" for c in row)
                         for row in grid)
    return "\n".join(" ".join(str(int(c)) for c in row) for row in grid)


def render_tokens(task: str, tokens: np.ndarray, colour: bool | None = None) -> str:
    """Render one sequence of tokens (an input or a label) as the task's grid."""
    tokens = np.asarray(tokens)
    if task == "sudoku":
        return render_sudoku(tokens)
    if task == "maze":
        return render_maze(tokens)
    if task == "arc":
        return render_arc(arc_grid_from_tokens(tokens), colour)
    raise ValueError(f"unknown task {task!r}")


def side_by_side(blocks: list[str], titles: list[str], gap: int = 4) -> str:
    """Place multi-line text blocks next to each other (widths measured without ANSI codes)."""
    import re

    strip = re.compile(r"\x1b\[[0-9;]*m")
    split = [[title, *block.splitlines()] for title, block in zip(titles, blocks)]
    widths = [max(len(strip.sub("", line)) for line in lines) for lines in split]
    height = max(len(lines) for lines in split)
    out = []
    for i in range(height):
        parts = []
        for lines, width in zip(split, widths):
            line = lines[i] if i < len(lines) else ""
            parts.append(line + " " * (width - len(strip.sub("", line))))
        out.append((" " * gap).join(parts).rstrip())
    return "\n".join(out)
