"""ARC token canvases: the format's constants, the crop back to a grid, version names (SPEC 3, 3.4, 6).

Tokens follow the reference code: pad 0, end-of-grid marker 1, colour c -> c + 2 (vocab 12).
A grid sits at (row, col) on the canvas (top-left unless translated); markers fill the row
just below it and the column just right of it, each limited to the grid's extent, where they
fit. The builder encodes with numba (builders/arc_kernels.py); the tests hold it against an
independent NumPy encoding (tests/arc_oracle.py).
"""
from __future__ import annotations

import math
import re

import numpy as np


ARC_SIDE = 30
ARC_SEQ_LEN = ARC_SIDE * ARC_SIDE
ARC_VOCAB = 12
PAD_TOKEN = 0
END_TOKEN = 1
COLOUR_OFFSET = 2
NUM_COLOURS = 10

_VERSION_NAME = re.compile(r"^(?P<task>.+)_t(?P<dihedral>[0-7])_(?P<digits>[0-9]{10})$")


def arc_grid_from_tokens(tokens: np.ndarray) -> np.ndarray:
    """Crop an ARC canvas (30x30 tokens) to its grid: the top-left rectangle of largest area
    holding only colour tokens (2..11), scanning rows downward with a shrinking width; returns
    colours 0-9 (SPEC 6)."""
    side = math.isqrt(np.asarray(tokens).size)
    canvas = np.asarray(tokens).reshape(side, side)
    best_area, best_h, best_w = 0, 0, 0
    width = side
    for row in range(side):
        non_colour = np.flatnonzero((canvas[row, :width] < COLOUR_OFFSET)
                                    | (canvas[row, :width] >= COLOUR_OFFSET + NUM_COLOURS))
        if len(non_colour):
            width = int(non_colour[0])
        if width == 0:
            break
        area = (row + 1) * width
        if area > best_area:
            best_area, best_h, best_w = area, row + 1, width
    return canvas[:best_h, :best_w].astype(np.int64) - COLOUR_OFFSET


def parse_version_name(name: str) -> tuple[str, int, np.ndarray]:
    """(task, dihedral id, colour map) of a version name; a bare task name is the identity."""
    match = _VERSION_NAME.match(name)
    if match:
        colour_map = np.frombuffer(match["digits"].encode(), dtype=np.uint8) - ord("0")
        if colour_map[0] == 0 and sorted(colour_map) == list(range(NUM_COLOURS)):
            return match["task"], int(match["dihedral"]), colour_map.astype(np.uint8)
    return name, 0, np.arange(NUM_COLOURS, dtype=np.uint8)
