"""The 8 symmetries of the square, numbered as the reference code numbers them (SPEC 3.4).

0 identity, 1 rot90, 2 rot180, 3 rot270 (np.rot90 with k = 1, 2, 3), 4 left-right flip,
5 up-down flip, 6 transpose, 7 anti-diagonal reflection (left-right flip of rot90).
"""
from __future__ import annotations

import numpy as np

NUM_DIHEDRAL = 8
INVERSE_DIHEDRAL = (0, 3, 2, 1, 4, 5, 6, 7)


def dihedral(grid: np.ndarray, transform_id: int) -> np.ndarray:
    """Apply dihedral transform `transform_id` to the first two axes of `grid`."""
    if transform_id == 0:
        return grid
    if transform_id in (1, 2, 3):
        return np.rot90(grid, k=transform_id)
    if transform_id == 4:
        return np.fliplr(grid)
    if transform_id == 5:
        return np.flipud(grid)
    if transform_id == 6:
        return np.swapaxes(grid, 0, 1)
    if transform_id == 7:
        return np.fliplr(np.rot90(grid, k=1))
    raise ValueError(f"dihedral transform id must be 0..7, got {transform_id}")


def inverse_dihedral(grid: np.ndarray, transform_id: int) -> np.ndarray:
    """Undo `dihedral(grid, transform_id)`."""
    return dihedral(grid, INVERSE_DIHEDRAL[transform_id])
