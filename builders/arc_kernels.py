"""numba kernels for the ARC builder: hashing augmented versions and encoding canvases.

A task is packed once into flat arrays (`pack_grids`): all its grids' cells in one uint8 buffer
with per-grid start, height and width. Every dihedral transform is then a strided read of a grid
(`augment.dihedral_kernels.dihedral_strides`), so no transformed copy is ever made.

Dedup hash: a version must differ from every kept version as a whole task (multiset of pairs,
as the reference compares sorted pair hashes). A pair's hash is Zobrist-style: the sum over its
transformed cells of a random 64-bit key per (grid side, position, colour), plus a key for the
shapes. With a colour map m that sum is, for each original colour c, a sum over c's cells of the
key for colour m[c] - so per transform and per (c, m[c]) it can be tabulated once per task
(`pair_tables`), and then hashing a candidate version costs 10 lookups per pair, whatever the
grid sizes. A task's hash sums the mixed (murmur3 finalizer) pair hashes, in two independent
64-bit lanes: collisions between the <= 5K candidates of a task are out of reach (~2^-100).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from hrm.augment.arc import ARC_SIDE, COLOUR_OFFSET, END_TOKEN, NUM_COLOURS
from hrm.augment.dihedral import NUM_DIHEDRAL
from hrm.augment.dihedral_kernels import dihedral_strides

_LANES = 2
_KEYS = np.random.default_rng(0x41524321).integers(
    0, np.iinfo(np.uint64).max, size=(_LANES, 2, ARC_SIDE * ARC_SIDE, NUM_COLOURS), dtype=np.uint64,
    endpoint=True)
_SHAPE_KEYS = np.random.default_rng(0x53484150).integers(
    0, np.iinfo(np.uint64).max, size=(_LANES, 2, ARC_SIDE + 1, ARC_SIDE + 1), dtype=np.uint64,
    endpoint=True)


def pack_grids(grids: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(cells uint8, starts int64, heights int64, widths int64) of a list of uint8 grids."""
    heights = np.array([g.shape[0] for g in grids], np.int64)
    widths = np.array([g.shape[1] for g in grids], np.int64)
    starts = np.concatenate([[0], np.cumsum(heights * widths)[:-1]]).astype(np.int64)
    cells = np.concatenate([np.ascontiguousarray(g, dtype=np.uint8).ravel() for g in grids])
    return cells, starts, heights, widths


@njit(cache=True, nogil=True)
def _fmix64(value):
    value ^= value >> np.uint64(33)
    value *= np.uint64(0xFF51AFD7ED558CCD)
    value ^= value >> np.uint64(33)
    value *= np.uint64(0xC4CEB9FE1A85EC53)
    value ^= value >> np.uint64(33)
    return value


@njit(cache=True, nogil=True)
def _pair_tables(cells, starts, heights, widths, keys, shape_keys):
    pairs = len(starts) // 2
    tables = np.zeros((pairs, NUM_DIHEDRAL, NUM_COLOURS, NUM_COLOURS, _LANES), np.uint64)
    shapes = np.zeros((pairs, NUM_DIHEDRAL, _LANES), np.uint64)
    for p in range(pairs):
        for transform in range(NUM_DIHEDRAL):
            for side in range(2):
                grid = 2 * p + side
                base, row_step, col_step, new_h, new_w = dihedral_strides(transform, heights[grid], widths[grid])
                for lane in range(_LANES):
                    shapes[p, transform, lane] += shape_keys[lane, side, new_h, new_w]
                for i in range(new_h):
                    source = starts[grid] + base + i * row_step
                    for j in range(new_w):
                        colour = cells[source + j * col_step]
                        position = i * ARC_SIDE + j
                        for target in range(NUM_COLOURS):
                            for lane in range(_LANES):
                                tables[p, transform, colour, target, lane] += keys[lane, side, position, target]
    return tables, shapes


def pair_tables(cells: np.ndarray, starts: np.ndarray, heights: np.ndarray,
                widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hash tables of a task whose grids are packed as (input, output) of pair 0, 1, ..."""
    return _pair_tables(cells, starts, heights, widths, _KEYS, _SHAPE_KEYS)


@njit(cache=True, nogil=True)
def version_hashes(tables, shapes, transforms, colour_maps):
    """uint64 [C, 2]: the hash of the whole task under each candidate (transform, colour map)."""
    candidates = len(transforms)
    pairs = tables.shape[0]
    hashes = np.zeros((candidates, _LANES), np.uint64)
    for c in range(candidates):
        transform = transforms[c]
        for p in range(pairs):
            for lane in range(_LANES):
                pair_hash = shapes[p, transform, lane]
                for colour in range(NUM_COLOURS):
                    pair_hash += tables[p, transform, colour, colour_maps[c, colour], lane]
                hashes[c, lane] += _fmix64(pair_hash ^ np.uint64(lane + 1))
    return hashes


@njit(cache=True, nogil=True)
def _paint(cells, start, height, width, transform, lut, row, col, canvas):
    base, row_step, col_step, new_h, new_w = dihedral_strides(transform, height, width)
    canvas[:] = 0
    for i in range(new_h):
        source = start + base + i * row_step
        target = (row + i) * ARC_SIDE + col
        for j in range(new_w):
            canvas[target + j] = lut[cells[source + j * col_step]]
    if row + new_h < ARC_SIDE:  # marker row just below the grid, as wide as the grid
        target = (row + new_h) * ARC_SIDE + col
        for j in range(new_w):
            canvas[target + j] = END_TOKEN
    if col + new_w < ARC_SIDE:  # marker column just right of the grid, as tall as the grid
        for i in range(new_h):
            canvas[(row + i) * ARC_SIDE + col + new_w] = END_TOKEN


@njit(cache=True, nogil=True)
def encode_versions(cells, starts, heights, widths, input_grids, output_grids, transforms, colour_maps,
                    rows, cols, inputs, labels):
    """Canvases of examples (input_grids[e], output_grids[e]) for versions v: row v*E + e of
    `inputs`/`labels` (uint8 [V*E, 900]) gets the example transformed by (transforms[v],
    colour_maps[v]) with its grid's top-left at (rows[v, e], cols[v, e])."""
    examples = len(input_grids)
    lut = np.empty(NUM_COLOURS, np.uint8)
    for v in range(len(transforms)):
        for colour in range(NUM_COLOURS):
            lut[colour] = colour_maps[v, colour] + COLOUR_OFFSET
        for e in range(examples):
            out_row = v * examples + e
            g = input_grids[e]
            _paint(cells, starts[g], heights[g], widths[g], transforms[v], lut, rows[v, e], cols[v, e],
                   inputs[out_row])
            g = output_grids[e]
            _paint(cells, starts[g], heights[g], widths[g], transforms[v], lut, rows[v, e], cols[v, e],
                   labels[out_row])
