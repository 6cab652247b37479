"""A helper shared by the numba kernels (builders, augment)."""
from __future__ import annotations

from numba import njit


@njit(cache=True)
def copy_into(destination, source) -> None:
    """destination[:] = source, as a loop. numba compiles an array-to-array assignment together
    with its shape-mismatch error message (string formatting of both shapes): seconds of cold
    compile time per signature (a third of a cold sudoku build), for a check that equal lengths
    make moot here."""
    for i in range(source.shape[0]):
        destination[i] = source[i]
