"""numba kernels of the dihedral transforms (SPEC 3.4 ids, as `augment.dihedral` numbers them) on
flat row-major grids: a transform is a strided read (`dihedral_strides`), so no transformed copy
is made. The ARC builder augments with them and eval inverts its predictions with them.
"""
from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True)
def dihedral_strides(transform, height, width):
    """Cell (i, j) of the transformed grid is original cell base + i*row_step + j*col_step
    (flat, row-major); returns (base, row_step, col_step, new_height, new_width)."""
    last_row = (height - 1) * width
    if transform == 0:
        return 0, width, 1, height, width
    if transform == 1:  # rot90: out[i, j] = g[j, w-1-i]
        return width - 1, -1, width, width, height
    if transform == 2:  # rot180: g[h-1-i, w-1-j]
        return last_row + width - 1, -width, -1, height, width
    if transform == 3:  # rot270: g[h-1-j, i]
        return last_row, 1, -width, width, height
    if transform == 4:  # left-right flip: g[i, w-1-j]
        return width - 1, width, -1, height, width
    if transform == 5:  # up-down flip: g[h-1-i, j]
        return last_row, -width, 1, height, width
    if transform == 6:  # transpose: g[j, i]
        return 0, 1, width, width, height
    # 7, anti-diagonal reflection (left-right flip of rot90): g[h-1-j, w-1-i]
    return last_row + width - 1, -1, -width, width, height


@njit(cache=True, nogil=True)
def transform_grid(cells, start, height, width, transform, colour_map, out):
    """Write grid `transform(colour_map[g])` into `out` (uint8, at least h*w); returns (h', w')."""
    base, row_step, col_step, new_h, new_w = dihedral_strides(transform, height, width)
    k = 0
    for i in range(new_h):
        source = start + base + i * row_step
        for j in range(new_w):
            out[k] = colour_map[cells[source + j * col_step]]
            k += 1
    return new_h, new_w
