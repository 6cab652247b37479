"""ARC colour permutations: colour i becomes colour_map[i]; colour 0 (background) stays 0."""
from __future__ import annotations

import numpy as np


def apply_colour_map(grid: np.ndarray, colour_map: np.ndarray) -> np.ndarray:
    return np.asarray(colour_map)[grid]


def inverse_colour_map(colour_map: np.ndarray) -> np.ndarray:
    """The map that undoes `colour_map` (both are permutations of 0-9)."""
    inverse = np.empty(len(colour_map), dtype=np.asarray(colour_map).dtype)
    inverse[np.asarray(colour_map)] = np.arange(len(colour_map))
    return inverse
