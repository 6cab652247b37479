"""Validity-preserving sudoku shuffles, their application to batches, and the exact inverse.

A transform is four descriptors (stored per puzzle in the dataset, SPEC 3.4), for n = box*box:

    transpose  uint8      0/1
    row_perm   uint8[n]   band-preserving permutation of rows
    col_perm   uint8[n]   stack-preserving permutation of columns
    digit_map  uint8[n+1] digit_map[0] = 0, digit_map[1:] a permutation of 1..n

With O the original grid of digits (0 = blank) and T = O.T if transpose else O, the augmented
grid is A[r, c] = digit_map[T[row_perm[r], col_perm[c]]].

Functions accept grids [..., n, n] or flat sequences [..., n*n] of digits, or of TOKENS
(`tokens=True`, the dataset's encoding: token = digit + 1, blank token 1, pad 0). Token 0 and
1 and any token above n+1 (never produced by the builder, but a model may predict it) pass
through the digit map unchanged, so `invert_sudoku_transform` can be applied to raw model
predictions. Descriptors either describe one transform (shapes (), [n], [n], [n+1]) or one per
leading row of the input (shapes [B], [B, n], [B, n], [B, n+1]).
"""
from __future__ import annotations

import itertools
import math

import numpy as np
from numba import njit, prange

from hrm.augment.random_stream import rng_below, shuffle
from hrm.common.kernels import copy_into


def _side(length: int) -> tuple[int, int]:
    side = math.isqrt(length)
    box = math.isqrt(side)
    if side * side != length or box * box != side:
        raise ValueError(f"a sudoku has (box*box)**2 cells, got {length}")
    return side, box


@njit(cache=True)
def _shuffle_lines(perm: np.ndarray, box: int, rng: np.ndarray) -> None:
    """A uniform band-preserving permutation in place (no allocation): the identity, a shuffle
    of the rows inside each band, then a shuffle of the bands as whole blocks."""
    for i in range(perm.shape[0]):
        perm[i] = i
    for band in range(box):
        shuffle(perm[band * box:(band + 1) * box], rng)
    for i in range(box - 1, 0, -1):
        j = rng_below(rng, i + 1)
        for k in range(box):
            perm[i * box + k], perm[j * box + k] = perm[j * box + k], perm[i * box + k]


@njit(cache=True, parallel=True, nogil=True)
def draw_transforms(seeds: np.ndarray, box: int):
    """One uniformly random transform per uint64 seed (in parallel; transform v depends only on
    seeds[v]): transpose with probability 1/2, a random order of the bands and of the rows
    inside each band, the same for stacks/columns, a random relabelling of the digits 1..n.

    Returns (transpose uint8[V], row_perm uint8[V, n], col_perm uint8[V, n], digit_map uint8[V, n+1])."""
    count = seeds.shape[0]
    n = box * box
    states = seeds.copy()  # one splitmix state per transform, used through a length-1 view
    transpose = np.zeros(count, np.uint8)
    row_perm = np.zeros((count, n), np.uint8)
    col_perm = np.zeros((count, n), np.uint8)
    digit_map = np.zeros((count, n + 1), np.uint8)
    for v in prange(count):
        rng = states[v:v + 1]
        transpose[v] = rng_below(rng, 2)
        _shuffle_lines(row_perm[v], box, rng)
        _shuffle_lines(col_perm[v], box, rng)
        for d in range(n + 1):
            digit_map[v, d] = d
        shuffle(digit_map[v, 1:], rng)
    return transpose, row_perm, col_perm, digit_map


def source_cells(transpose: np.ndarray, row_perm: np.ndarray, col_perm: np.ndarray) -> np.ndarray:
    """int64[B, n*n]: for every cell r*n+c of the augmented grid, the original cell it reads.

    T[i, j] is O[i, j], or O[j, i] when transposed; A[r, c] reads T[row_perm[r], col_perm[c]]."""
    transpose = np.asarray(transpose).reshape(-1)
    row_perm = np.asarray(row_perm, np.int64).reshape(len(transpose), -1)
    col_perm = np.asarray(col_perm, np.int64).reshape(len(transpose), -1)
    n = row_perm.shape[1]
    rows = row_perm[:, :, None]
    cols = col_perm[:, None, :]
    cells = np.where(transpose[:, None, None] != 0, cols * n + rows, rows * n + cols)
    return cells.reshape(len(transpose), n * n)


def inverse_transforms(transpose: np.ndarray, row_perm: np.ndarray, col_perm: np.ndarray,
                       digit_map: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Descriptors of the inverse transforms, in the same semantics (so that applying them undoes
    the originals). With P = perms and m = digit_map, A = m[T[rp, cp]] gives
    T = m^-1[A[rp^-1, cp^-1]]; un-transposing swaps the roles of the row and column perms."""
    transpose = np.asarray(transpose, np.uint8).reshape(-1)
    row_perm = np.asarray(row_perm).reshape(len(transpose), -1)
    col_perm = np.asarray(col_perm).reshape(len(transpose), -1)
    digit_map = np.asarray(digit_map).reshape(len(transpose), -1)
    rows_back = np.argsort(row_perm, axis=1).astype(np.uint8)
    cols_back = np.argsort(col_perm, axis=1).astype(np.uint8)
    digits_back = np.argsort(digit_map, axis=1).astype(np.uint8)
    swap = transpose[:, None] != 0
    # Undo: O = (T if not transposed else T.T), T[i, j] = m^-1[A[rows_back[i], cols_back[j]]].
    # If transposed, O[i, j] = T[j, i] = m^-1[A[rows_back[j], cols_back[i]]], which is the same
    # semantics with transpose=1 and the two permutations exchanged.
    new_rows = np.where(swap, cols_back, rows_back)
    new_cols = np.where(swap, rows_back, cols_back)
    return transpose.copy(), new_rows, new_cols, digits_back


def _token_lookup(digit_map: np.ndarray, tokens: bool) -> np.ndarray:
    """uint8[B, 256] value lookup: the digit map on digits (or digit tokens), identity elsewhere."""
    digit_map = np.asarray(digit_map, np.uint8)
    lookup = np.tile(np.arange(256, dtype=np.uint8), (len(digit_map), 1))
    offset = 1 if tokens else 0
    n = digit_map.shape[1] - 1
    lookup[:, offset + 1:offset + n + 1] = digit_map[:, 1:] + offset
    return lookup


def apply_sudoku_transform(x: np.ndarray, transpose, row_perm, col_perm, digit_map, *,
                           tokens: bool = True) -> np.ndarray:
    """Apply transform(s) to sequences [..., n*n] or grids [..., n, n] (numpy gather).

    With one descriptor set (scalar `transpose`), every sequence/grid of `x` gets the same
    transform; with per-row descriptors ([B] `transpose`), x's first axis must be B.
    `tokens=True`: values are dataset tokens (digit + 1); False: digits (0 = blank). Values
    must lie in 0..255."""
    x = np.asarray(x)
    n = np.shape(row_perm)[-1]
    size = n * n
    if x.shape[-1:] != (size,) and x.shape[-2:] != (n, n):
        raise ValueError(f"expected sequences of {size} cells or {n}x{n} grids, got shape {x.shape}")
    _side(size)
    batched = np.ndim(transpose) == 1
    count = len(transpose) if batched else 1
    if batched and (x.ndim < 2 or x.shape[0] != count):
        raise ValueError(f"{count} transforms for an input of shape {x.shape}")
    rows = x.reshape(count, -1, size)
    cells = source_cells(np.reshape(transpose, count), np.reshape(row_perm, (count, n)),
                         np.reshape(col_perm, (count, n)))
    lookup = _token_lookup(np.reshape(digit_map, (count, n + 1)), tokens)
    gathered = np.take_along_axis(rows, cells[:, None, :], axis=2)
    out = lookup[np.arange(count)[:, None, None], gathered.astype(np.intp)]
    return out.astype(x.dtype).reshape(x.shape)


def invert_sudoku_transform(y: np.ndarray, transpose, row_perm, col_perm, digit_map, *,
                            tokens: bool = True) -> np.ndarray:
    """Map augmented grids/sequences (e.g. a model's predicted tokens) back to the original
    frame: the exact inverse of `apply_sudoku_transform` with the same descriptors."""
    single = np.ndim(transpose) == 0
    inverse = inverse_transforms(transpose, row_perm, col_perm, digit_map)
    if single:
        inverse = (inverse[0][0], inverse[1][0], inverse[2][0], inverse[3][0])
    return apply_sudoku_transform(y, *inverse, tokens=tokens)


@njit(cache=True, parallel=True, nogil=True)
def augment_pairs(puzzles, solutions, group, transpose, row_perm, col_perm, digit_map):
    """The build's hot path: version v of original group[v] as tokens, plus a 64-bit hash of
    (group, input, label) used to find duplicate versions of one original.

    puzzles/solutions int8[G, N] digits; descriptors per version [V, ...]. Returns
    (inputs uint8[V, N], labels uint8[V, N], hashes uint64[V])."""
    count = group.shape[0]
    size = puzzles.shape[1]
    n = row_perm.shape[1]
    inputs = np.empty((count, size), np.uint8)
    labels = np.empty((count, size), np.uint8)
    hashes = np.empty(count, np.uint64)
    for v in prange(count):
        g = group[v]
        h = (np.uint64(0xCBF29CE484222325) ^ np.uint64(g)) * np.uint64(0x100000001B3)
        for r in range(n):
            for c in range(n):
                i = row_perm[v, r]
                j = col_perm[v, c]
                source = j * n + i if transpose[v] else i * n + j
                digit_in = digit_map[v, puzzles[g, source]]
                digit_out = digit_map[v, solutions[g, source]]
                inputs[v, r * n + c] = digit_in + 1
                labels[v, r * n + c] = digit_out + 1
                # FNV-1a style mixing over (input digit, label digit) pairs
                h = (h ^ np.uint64(digit_in * 16 + digit_out)) * np.uint64(0x100000001B3)
        hashes[v] = h
    return inputs, labels, hashes


def line_permutations(box: int) -> np.ndarray:
    """uint8[box! ** (box + 1), n]: every band-preserving permutation of the n = box*box lines
    (an order of the bands, then an order of the lines inside each band)."""
    inside = list(itertools.permutations(range(box)))
    perms = [[band * box + line for band, order in zip(bands, orders) for line in order]
             for bands in itertools.permutations(range(box)) for orders in itertools.product(inside, repeat=box)]
    return np.array(perms, np.uint8)


@njit(cache=True, parallel=True, nogil=True)
def _canonical_grids(grids, perms):
    """Row b: the lexicographically smallest grid over every transpose and line permutation,
    with digits renamed 1, 2, ... in order of first appearance (blanks stay 0)."""
    count, size = grids.shape
    n = perms.shape[1]
    out = np.empty_like(grids)
    for b in prange(count):
        best = np.full(size, 127, np.int8)
        candidate = np.empty(size, np.int8)
        names = np.empty(n + 1, np.int8)
        for transpose in range(2):
            for r in range(perms.shape[0]):
                for c in range(perms.shape[0]):
                    names[:] = 0
                    named = 0
                    for i in range(n):
                        for j in range(n):
                            row, col = perms[r, i], perms[c, j]
                            digit = grids[b, col * n + row] if transpose else grids[b, row * n + col]
                            if digit != 0 and names[digit] == 0:
                                named += 1
                                names[digit] = named
                            candidate[i * n + j] = names[digit]
                    for k in range(size):  # keep the candidate if it is smaller
                        if candidate[k] != best[k]:
                            if candidate[k] < best[k]:
                                copy_into(best, candidate)
                            break
        copy_into(out[b], best)
    return out


def canonical_sudoku(grids: np.ndarray, box: int) -> np.ndarray:
    """A canonical representative of every grid's orbit under the augmentation group (transpose,
    band/row and stack/column permutations, digit relabelling): two grids [B, n*n] of digits
    (0 = blank) get equal rows iff one is a transform of the other.

    Enumerates all 2 * (box! ** (box + 1)) ** 2 line transforms: 128 for 4x4 (microseconds per
    grid), 3.4 million for 9x9 (too slow for whole splits: the 9x9 builder compares exactly)."""
    grids = np.ascontiguousarray(grids, np.int8)
    if grids.ndim != 2 or grids.shape[1] != box ** 4:
        raise ValueError(f"expected [B, {box ** 4}] digit grids, got shape {grids.shape}")
    return _canonical_grids(grids, line_permutations(box))
