"""Map predictions back to the original frame of their puzzle, in batches (SPEC 6).

Every predicted sequence belongs to one augmented version of an original puzzle. To vote, each
prediction is turned into its answer in the ORIGINAL frame, using the descriptors the builder
stored per puzzle (BRIEF: `aug_dihedral`, `aug_colour_map` for ARC; `aug_transpose`,
`aug_row_perm`, `aug_col_perm`, `aug_digit_map` for sudoku; `aug_dihedral` for maze), and
hashed (64 bits) so that identical answers can be counted without comparing grids.

- ARC: crop the canvas to its grid (the crop of `augment.arc.arc_grid_from_tokens`),
  subtract 2, undo the dihedral transform, undo the colour permutation. Scoring ARC evaluation
  with 1000 versions means ~0.4M of these, so it is one numba kernel over the batch (the tests
  hold it against `arc_grid_from_tokens`, `augment.dihedral` and `augment.colour`).
- sudoku: undo the digit relabelling, the row/column permutations and the transpose
  (`augment.sudoku.invert_sudoku_transform`).
- maze: undo the dihedral transform (`augment.dihedral`, vectorised per transform id).

`SetFrames` holds, for every example row of a set, the voting key it belongs to: one key per
(original puzzle = group, test input = row offset inside the puzzle).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from hrm.augment.dihedral import INVERSE_DIHEDRAL, inverse_dihedral
from hrm.augment.dihedral_kernels import transform_grid
from hrm.augment.random_stream import mix64
from hrm.augment.sudoku import invert_sudoku_transform
from hrm.builders.dataset import PuzzleSet
from hrm.common import HrmError

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_INVERSE_DIHEDRAL = np.array(INVERSE_DIHEDRAL, np.int64)


@njit(parallel=True, cache=True)
def _hash_rows(rows, out):
    for n in prange(rows.shape[0]):
        h = _FNV_OFFSET
        for i in range(rows.shape[1]):
            h = (h ^ np.uint64(rows[n, i])) * _FNV_PRIME
        out[n] = mix64(h)  # FNV-1a alone leaves short inputs' high bits poorly mixed


def hash_rows(rows: np.ndarray) -> np.ndarray:
    """A 64-bit hash of every row of a uint8 [b, L] array."""
    out = np.empty(len(rows), np.uint64)
    _hash_rows(np.ascontiguousarray(rows, dtype=np.uint8), out)
    return out


@njit(parallel=True, cache=True)
def _arc_inverse(tokens, side, dihedral, inverse_colour, inverse_ids, grids, shapes, hashes):
    for n in prange(tokens.shape[0]):
        # SPEC 6 crop: scan rows downward, the width shrinking to just before the first
        # non-colour token (colours are tokens 2..11); keep the largest area.
        best_area, best_h, best_w, width = 0, 0, 0, side
        for row in range(side):
            w = 0
            while w < width:
                token = tokens[n, row * side + w]
                if token < 2 or token > 11:
                    break
                w += 1
            width = w
            if width == 0:
                break
            if (row + 1) * width > best_area:
                best_area, best_h, best_w = (row + 1) * width, row + 1, width
        cropped = np.empty(best_area, np.uint8)
        for i in range(best_h):
            for j in range(best_w):
                cropped[i * best_w + j] = tokens[n, i * side + j] - 2
        # The builder's own kernel writes transform(colour_map[grid]); colour maps and dihedral
        # transforms commute, so the inverse ids and inverse maps give the original grid.
        original = np.empty(best_area, np.uint8)
        out_h, out_w = 0, 0
        if best_area:
            out_h, out_w = transform_grid(cropped, 0, best_h, best_w, inverse_ids[dihedral[n]],
                                          inverse_colour[n], original)
        shapes[n, 0], shapes[n, 1] = out_h, out_w
        h = (_FNV_OFFSET ^ np.uint64(out_h)) * _FNV_PRIME
        h = (h ^ np.uint64(out_w)) * _FNV_PRIME
        for i in range(out_h):
            for j in range(out_w):
                colour = original[i * out_w + j]
                grids[n, i, j] = colour
                h = (h ^ np.uint64(colour)) * _FNV_PRIME
        hashes[n] = mix64(h)


@dataclass
class Answers:
    """Answers of a batch in the original frame: hashes uint64 [b], ok bool [b] (False = not a
    grid, e.g. an empty ARC crop: such a prediction does not vote), and for ARC the grids
    (uint8 [b, side, side], valid in [:h, :w]) with their shapes int32 [b, 2]."""

    hashes: np.ndarray
    ok: np.ndarray
    grids: np.ndarray | None = None
    shapes: np.ndarray | None = None

    def grid(self, n: int) -> np.ndarray:
        h, w = self.shapes[n]
        return self.grids[n, :h, :w].copy()


def arc_answers(tokens: np.ndarray, dihedral_ids: np.ndarray, inverse_colour_maps: np.ndarray) -> Answers:
    """Crop, subtract 2, undo dihedral `dihedral_ids[n]` (the forward id) and colours
    (`inverse_colour_maps[n]` maps augmented colour -> original colour) for each canvas."""
    tokens = np.ascontiguousarray(tokens, dtype=np.uint8)
    side = int(math.isqrt(tokens.shape[1]))
    b = len(tokens)
    grids = np.zeros((b, side, side), np.uint8)
    shapes = np.zeros((b, 2), np.int32)
    hashes = np.empty(b, np.uint64)
    _arc_inverse(tokens, side, np.ascontiguousarray(dihedral_ids, dtype=np.uint8),
                 np.ascontiguousarray(inverse_colour_maps, dtype=np.uint8), _INVERSE_DIHEDRAL,
                 grids, shapes, hashes)
    return Answers(hashes, (shapes[:, 0] > 0) & (shapes[:, 1] > 0), grids, shapes)


def maze_original(tokens: np.ndarray, dihedral_ids: np.ndarray) -> np.ndarray:
    """Undo each row's dihedral transform (forward id `dihedral_ids[n]`) on [b, side*side] tokens."""
    side = int(math.isqrt(tokens.shape[1]))
    grids = np.asarray(tokens).reshape(-1, side, side)
    out = grids.copy()
    for transform_id in np.unique(dihedral_ids):
        rows = np.flatnonzero(dihedral_ids == transform_id)
        # augment.dihedral acts on the first two axes: move the batch axis last.
        batch = np.moveaxis(grids[rows], 0, -1)
        out[rows] = np.moveaxis(inverse_dihedral(batch, int(transform_id)), -1, 0)
    return out.reshape(len(grids), -1)


def sudoku_original(tokens: np.ndarray, descriptors: dict[str, np.ndarray]) -> np.ndarray:
    """Undo each row's sudoku shuffle on [b, n*n] tokens (token = digit + 1; other tokens pass
    through); the descriptor arrays are already gathered per row."""
    if _is_identity_sudoku(descriptors):
        return np.asarray(tokens)
    return invert_sudoku_transform(np.asarray(tokens, np.uint8), descriptors["aug_transpose"],
                                   descriptors["aug_row_perm"], descriptors["aug_col_perm"],
                                   descriptors["aug_digit_map"], tokens=True)


def _is_identity_sudoku(descriptors: dict[str, np.ndarray]) -> bool:
    if not descriptors:
        return True
    n = descriptors["aug_row_perm"].shape[1]
    return bool(not descriptors["aug_transpose"].any()
                and (descriptors["aug_row_perm"] == np.arange(n)).all()
                and (descriptors["aug_col_perm"] == np.arange(n)).all()
                and (descriptors["aug_digit_map"] == np.arange(n + 1)).all())


_FIELDS = {"arc": ("aug_dihedral", "aug_colour_map"), "maze": ("aug_dihedral",),
           "sudoku": ("aug_transpose", "aug_row_perm", "aug_col_perm", "aug_digit_map")}


class SetFrames:
    """For one set of the scored split: the voting key of every example row, and the per-puzzle
    descriptors that take its predictions back to the original frame."""

    def __init__(self, task: str, puzzle_set: PuzzleSet, key_offset: int = 0):
        if task not in _FIELDS:
            raise HrmError(f"cannot score task {task!r} (known: arc, sudoku, maze)")
        self.task, self.name = task, puzzle_set.name
        puzzle_indices, group_indices = puzzle_set.puzzle_indices, puzzle_set.group_indices
        examples_per_puzzle = np.diff(puzzle_indices)
        puzzles_per_group = np.diff(group_indices)
        if len(puzzles_per_group) and puzzles_per_group.min() < 1:
            raise HrmError(f"set {self.name!r} has a group without puzzles")
        num_puzzles = len(examples_per_puzzle)
        self.example_puzzle = np.repeat(np.arange(num_puzzles, dtype=np.int64), examples_per_puzzle)
        puzzle_group = np.repeat(np.arange(len(puzzles_per_group), dtype=np.int64), puzzles_per_group)
        offset = np.arange(len(self.example_puzzle), dtype=np.int64) - puzzle_indices[self.example_puzzle]
        # A group's test inputs: as many as its largest version has (all equal for a valid dataset).
        inputs_per_group = (np.maximum.reduceat(examples_per_puzzle, group_indices[:-1])
                            if num_puzzles else np.zeros(0, np.int64))
        self.group_key_start = key_offset + np.concatenate([[0], np.cumsum(inputs_per_group)]).astype(np.int64)
        self.example_key = self.group_key_start[puzzle_group[self.example_puzzle]] + offset
        self.num_keys = int(inputs_per_group.sum())
        self.key_offset = key_offset
        self.num_groups = len(puzzles_per_group)
        self.puzzle_group = puzzle_group
        self.group_first_puzzle = group_indices[:-1]
        self.descriptors = self._load_descriptors(puzzle_set, puzzles_per_group)

    def _load_descriptors(self, puzzle_set: PuzzleSet, puzzles_per_group: np.ndarray) -> dict[str, np.ndarray]:
        names = _FIELDS[self.task]
        present = [name for name in names if name in puzzle_set.field_names("puzzle")]
        if len(present) < len(names):
            if len(puzzles_per_group) and puzzles_per_group.max() > 1:
                missing = ", ".join(name for name in names if name not in present)
                raise HrmError(f"set {self.name!r} holds augmented versions but no descriptor field(s) "
                               f"{missing}; cannot map predictions back to the original puzzles")
            return {}  # unaugmented: every prediction is already in the original frame
        fields = {name: np.asarray(puzzle_set.field(name)) for name in names}
        if "aug_dihedral" in fields and len(fields["aug_dihedral"]) and fields["aug_dihedral"].max() > 7:
            raise HrmError(f"set {self.name!r}: aug_dihedral holds an id above 7")
        if self.task == "arc":
            maps = fields.pop("aug_colour_map")
            if (np.sort(maps, axis=1) != np.arange(maps.shape[1])).any():
                raise HrmError(f"set {self.name!r}: aug_colour_map holds a row that is not a permutation of 0-9")
            # Batched augment.colour.inverse_colour_map: argsort of a permutation is its inverse.
            fields["inverse_colour_map"] = np.argsort(maps, axis=1).astype(np.uint8)
        return fields

    def identity_puzzles(self) -> np.ndarray:
        """Per group, the puzzle holding the unaugmented version (the first one when unknown)."""
        chosen = self.group_first_puzzle.copy()
        if self.descriptors:
            d = self.descriptors
            if self.task == "sudoku":
                n = d["aug_row_perm"].shape[1]
                identity = ((d["aug_transpose"] == 0) & (d["aug_row_perm"] == np.arange(n)).all(axis=1)
                            & (d["aug_col_perm"] == np.arange(n)).all(axis=1)
                            & (d["aug_digit_map"] == np.arange(n + 1)).all(axis=1))
            else:
                identity = d["aug_dihedral"] == 0
                if self.task == "arc":
                    identity &= (d["inverse_colour_map"] == np.arange(10)).all(axis=1)
            rows = np.flatnonzero(identity)
            groups = self.puzzle_group[rows]
            first_per_group = np.unique(groups, return_index=True)[1]
            chosen[groups[first_per_group]] = rows[first_per_group]
        return chosen

    def answers(self, examples: np.ndarray, tokens: np.ndarray, labels: np.ndarray,
                ignore_label_id: int) -> Answers:
        """Original-frame answers of the sequences `tokens` [b, seq_len] sitting at `examples`."""
        puzzles = self.example_puzzle[examples]
        if self.task == "arc":
            if self.descriptors:
                dihedral, inverse_colour = (self.descriptors["aug_dihedral"][puzzles],
                                            self.descriptors["inverse_colour_map"][puzzles])
            else:
                dihedral = np.zeros(len(puzzles), np.uint8)
                inverse_colour = np.broadcast_to(np.arange(10, dtype=np.uint8), (len(puzzles), 10))
            return arc_answers(tokens, dihedral, inverse_colour)
        if self.task == "maze":
            # Positions the label does not score do not distinguish answers.
            tokens = np.where(labels == ignore_label_id, ignore_label_id, tokens).astype(np.uint8)
            ok = np.ones(len(tokens), bool)
            if self.descriptors:
                tokens = maze_original(tokens, self.descriptors["aug_dihedral"][puzzles])
            return Answers(hash_rows(tokens), ok)
        if self.descriptors:
            tokens = sudoku_original(tokens, {name: values[puzzles] for name, values in self.descriptors.items()})
        return Answers(hash_rows(tokens), np.ones(len(tokens), bool))
