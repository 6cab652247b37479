"""ARC grids <-> 30x30 token canvases, augmented versions and their names (SPEC 3, 3.4, 6).

Tokens follow the reference code: pad 0, end-of-grid marker 1, colour c -> c + 2 (vocab 12).
A grid sits at (row, col) on the canvas (top-left unless translated); markers fill the row
just below it and the column just right of it, each limited to the grid's extent, where they
fit. This module is the NumPy reference; builders/arc_kernels.py has the numba hot path.
"""
from __future__ import annotations

import math
import re

import numpy as np

from hrm.augment.colour import apply_colour_map, inverse_colour_map
from hrm.augment.dihedral import dihedral, inverse_dihedral

ARC_SIDE = 30
ARC_SEQ_LEN = ARC_SIDE * ARC_SIDE
ARC_VOCAB = 12
PAD_TOKEN = 0
END_TOKEN = 1
COLOUR_OFFSET = 2
NUM_COLOURS = 10

_VERSION_NAME = re.compile(r"^(?P<task>.+)_t(?P<dihedral>[0-7])_(?P<digits>[0-9]{10})$")


def arc_grid_to_tokens(grid: np.ndarray, row: int = 0, col: int = 0) -> np.ndarray:
    """The uint8[900] canvas holding `grid` (colours 0-9) with its top-left cell at (row, col)."""
    grid = np.asarray(grid)
    height, width = grid.shape
    if row + height > ARC_SIDE or col + width > ARC_SIDE:
        raise ValueError(f"a {height}x{width} grid at ({row}, {col}) does not fit a {ARC_SIDE}x{ARC_SIDE} canvas")
    canvas = np.full((ARC_SIDE, ARC_SIDE), PAD_TOKEN, dtype=np.uint8)
    canvas[row:row + height, col:col + width] = grid + COLOUR_OFFSET
    if row + height < ARC_SIDE:
        canvas[row + height, col:col + width] = END_TOKEN
    if col + width < ARC_SIDE:
        canvas[row:row + height, col + width] = END_TOKEN
    return canvas.ravel()


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


def augment_grid(grid: np.ndarray, dihedral_id: int, colour_map: np.ndarray) -> np.ndarray:
    """The grid of an augmented version: colours mapped, then the dihedral transform."""
    return np.ascontiguousarray(dihedral(apply_colour_map(grid, colour_map), dihedral_id))


def original_grid(grid: np.ndarray, dihedral_id: int, colour_map: np.ndarray) -> np.ndarray:
    """Undo `augment_grid`: back to the original task's frame and colours."""
    return np.ascontiguousarray(apply_colour_map(inverse_dihedral(grid, dihedral_id),
                                                 inverse_colour_map(colour_map)))


def version_name(task: str, dihedral_id: int, colour_map: np.ndarray) -> str:
    """`<task>_t<id>_<ten digits>` as the reference names versions; the identity keeps `task`."""
    colour_map = np.asarray(colour_map)
    if dihedral_id == 0 and np.array_equal(colour_map, np.arange(NUM_COLOURS)):
        return task
    return f"{task}_t{dihedral_id}_{''.join(str(int(c)) for c in colour_map)}"


def parse_version_name(name: str) -> tuple[str, int, np.ndarray]:
    """(task, dihedral id, colour map) of a version name; a bare task name is the identity."""
    match = _VERSION_NAME.match(name)
    if match:
        colour_map = np.frombuffer(match["digits"].encode(), dtype=np.uint8) - ord("0")
        if colour_map[0] == 0 and sorted(colour_map) == list(range(NUM_COLOURS)):
            return match["task"], int(match["dihedral"]), colour_map.astype(np.uint8)
    return name, 0, np.arange(NUM_COLOURS, dtype=np.uint8)
