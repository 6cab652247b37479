"""Per-prediction metrics and task-averaged pass@K (SPEC 6).

- token metrics in the version's own frame, defined exactly as the trainer's evaluation
  computes them (train/losses.py): a row counts only if its label scores at least one
  position; `exact` = every scored position right; token accuracy = the row's fraction of
  scored positions right, averaged over rows. So `hrm eval` reproduces the trainer's logged
  `exact_accuracy` / `accuracy` for the same checkpoint.
- sudoku validity: the predicted grid is a complete valid solution that keeps the input's clues
  (a correct solution different from the label is valid but not exact).
- maze validity: the prediction keeps the maze and marks a shortest S->G path (BFS distance),
  possibly a different one than the label's.
- pass@K: a key (original puzzle, test input) is solved at K when its best-ranked right answer
  has rank < K; a group (original task) scores the fraction of its keys solved; the score is the
  mean over groups (for ARC the official task-averaged score; for sudoku/maze a group has one
  key, so it is the plain fraction of puzzles).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from hrm.augment import maze_paths

ARC_PASS_KS = (1, 2, 5, 10, 100, 1000)


@njit(parallel=True, cache=True)
def _token_counts(predictions, labels, ignore_label_id, scored, right):
    for n in prange(predictions.shape[0]):
        s, r = 0, 0
        for i in range(predictions.shape[1]):
            if labels[n, i] != ignore_label_id:
                s += 1
                r += predictions[n, i] == labels[n, i]
        scored[n], right[n] = s, r


def token_metrics(predictions: np.ndarray, labels: np.ndarray,
                  ignore_label_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(counted bool [b], exact bool [b], token accuracy float64 [b]) of each row."""
    scored = np.empty(len(predictions), np.int64)
    right = np.empty(len(predictions), np.int64)
    _token_counts(np.ascontiguousarray(predictions, np.uint8), np.ascontiguousarray(labels, np.uint8),
                  ignore_label_id, scored, right)
    counted = scored > 0
    return counted, counted & (right == scored), right / np.maximum(scored, 1)


def sudoku_valid(predictions: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """Rows (tokens, digit + 1) that are a complete valid solution keeping the input's clues."""
    n = int(math.isqrt(predictions.shape[1]))
    box = int(math.isqrt(n))
    digits = predictions.astype(np.int64).reshape(-1, n, n) - 1
    in_range = ((digits >= 1) & (digits <= n)).all(axis=(1, 2))
    bits = np.left_shift(1, np.clip(digits, 0, n))
    full = (1 << (n + 1)) - 2  # bits 1..n
    # n cells covering all n digits = each digit exactly once.
    rows_ok = (np.bitwise_or.reduce(bits, axis=2) == full).all(axis=1)
    cols_ok = (np.bitwise_or.reduce(bits, axis=1) == full).all(axis=1)
    boxes = bits.reshape(-1, box, box, box, box).transpose(0, 1, 3, 2, 4).reshape(-1, n, n)
    boxes_ok = (np.bitwise_or.reduce(boxes, axis=2) == full).all(axis=1)
    clues = inputs > 1
    keeps_clues = ((predictions == inputs) | ~clues).all(axis=1)
    return in_range & rows_ok & cols_ok & boxes_ok & keeps_clues


def sudoku_conflicts(predictions: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """bool [b, seq_len]: the cells that break a rule of sudoku_valid - a token that is not a
    digit, a clue changed, or a digit that appears again in the cell's row, column or box. A row
    without any is exactly a row sudoku_valid accepts (n cells with no repeat hold every digit)."""
    n = int(math.isqrt(predictions.shape[1]))
    box = int(math.isqrt(n))
    digits = predictions.astype(np.int64).reshape(-1, n, n) - 1
    one_hot = digits[..., None] == np.arange(1, n + 1)                     # [b, row, col, digit]
    in_row = one_hot.sum(axis=2, keepdims=True)
    in_col = one_hot.sum(axis=1, keepdims=True)
    boxes = one_hot.reshape(-1, box, box, box, box, n)                      # [b, band, r, stack, c, digit]
    in_box = boxes.sum(axis=(2, 4), keepdims=True)
    in_box = np.broadcast_to(in_box, boxes.shape).reshape(one_hot.shape)
    repeated = (one_hot & ((in_row > 1) | (in_col > 1) | (in_box > 1))).any(axis=-1)
    not_digit = (digits < 1) | (digits > n)
    clue_changed = ((inputs > 1) & (predictions != inputs)).reshape(digits.shape)
    return (repeated | not_digit | clue_changed).reshape(len(predictions), -1)


def maze_valid(predictions: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """Rows whose prediction keeps the maze (only open cells may become `o`; S and G keep their
    letters, as in the labels) and marks one shortest S->G path, any of them. The path check is
    the rule the maze builder checks imported labels with (`augment.maze_paths.check_solutions`)."""
    side = int(math.isqrt(predictions.shape[1]))
    keeps_maze = ((predictions == inputs) | ((inputs == maze_paths.OPEN) & (predictions == maze_paths.PATH))).all(axis=1)
    one_each = ((inputs == maze_paths.START).sum(axis=1) == 1) & ((inputs == maze_paths.GOAL).sum(axis=1) == 1)
    rows = np.flatnonzero(keeps_maze & one_each)
    codes, lengths, marked, counts = (np.empty(len(rows), np.int32) for _ in range(4))
    maze_paths.check_solutions(side, np.ascontiguousarray(inputs[rows], np.uint8),
                                 np.ascontiguousarray(predictions[rows], np.uint8), codes, lengths, marked, counts)
    out = np.zeros(len(predictions), bool)
    out[rows] = codes == maze_paths.CHECK_OK
    return out


def pass_ks(task: str, vote_k: int, max_votes_per_key: int) -> list[int]:
    """pass@1..pass@vote_k, plus for ARC the reference's K in ARC_PASS_KS that the votes reach."""
    ks = set(range(1, max(1, vote_k) + 1))
    if task == "arc":
        ks |= {k for k in ARC_PASS_KS if k <= max(1, max_votes_per_key)}
    return sorted(ks)


def group_means(per_key: np.ndarray, key_group: np.ndarray, num_groups: int) -> np.ndarray:
    """Mean of `per_key` [num_keys, m] over the keys of each group -> [num_groups, m]."""
    per_key = np.asarray(per_key, np.float64).reshape(len(key_group), -1)
    sums = np.zeros((num_groups, per_key.shape[1]))
    np.add.at(sums, key_group, per_key)
    counts = np.bincount(key_group, minlength=num_groups)[:, None]
    return sums / np.maximum(counts, 1)
