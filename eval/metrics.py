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

ARC_PASS_KS = (1, 2, 5, 10, 100, 1000)
MAZE_WALL, MAZE_OPEN, MAZE_START, MAZE_GOAL, MAZE_PATH = 1, 2, 3, 4, 5


def token_metrics(predictions: np.ndarray, labels: np.ndarray,
                  ignore_label_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(counted bool [b], exact bool [b], token accuracy float64 [b]) of each row."""
    scored = labels != ignore_label_id
    right = (predictions == labels) & scored
    scored_count = scored.sum(axis=1)
    right_count = right.sum(axis=1)
    counted = scored_count > 0
    return counted, counted & (right_count == scored_count), right_count / np.maximum(scored_count, 1)


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


@njit(cache=True)
def _bfs_distance(allowed, side, start, goal, distance, queue):
    distance[:] = -1
    distance[start] = 0
    queue[0] = start
    head, tail = 0, 1
    while head < tail:
        cell = queue[head]
        head += 1
        if cell == goal:
            return distance[cell]
        row, col = cell // side, cell % side
        for step in range(4):
            r = row + (step == 0) - (step == 1)
            c = col + (step == 2) - (step == 3)
            if 0 <= r < side and 0 <= c < side:
                nxt = r * side + c
                if allowed[nxt] and distance[nxt] < 0:
                    distance[nxt] = distance[cell] + 1
                    queue[tail] = nxt
                    tail += 1
    return -1


@njit(parallel=True, cache=True)
def _maze_valid(predictions, inputs, side, out):
    cells = side * side
    for n in prange(predictions.shape[0]):
        start, goal = -1, -1
        for i in range(cells):
            if inputs[n, i] == MAZE_START:
                start = i
            elif inputs[n, i] == MAZE_GOAL:
                goal = i
        out[n] = False
        if start < 0 or goal < 0:
            continue
        open_cells = np.empty(cells, np.bool_)
        path_cells = np.empty(cells, np.bool_)
        marked, keeps_maze = 0, True
        for i in range(cells):
            given, predicted = inputs[n, i], predictions[n, i]
            open_cells[i] = given != MAZE_WALL
            if given == MAZE_OPEN:
                keeps_maze &= predicted == MAZE_OPEN or predicted == MAZE_PATH
                marked += predicted == MAZE_PATH
            else:  # walls stay walls; S and G stay (or are drawn as part of the path)
                keeps_maze &= predicted == given or (given != MAZE_WALL and predicted == MAZE_PATH)
            path_cells[i] = (given == MAZE_OPEN and predicted == MAZE_PATH) or i == start or i == goal
        if not keeps_maze:
            continue
        distance = np.empty(cells, np.int64)
        queue = np.empty(cells, np.int64)
        shortest = _bfs_distance(open_cells, side, start, goal, distance, queue)
        # A shortest path has exactly shortest-1 cells between S and G; if the marked cells
        # are that many and connect S to G in `shortest` steps, they are such a path.
        if shortest > 0 and marked == shortest - 1:
            out[n] = _bfs_distance(path_cells, side, start, goal, distance, queue) == shortest


def maze_valid(predictions: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """Rows whose prediction keeps the maze and marks one shortest S->G path (any of them)."""
    side = int(math.isqrt(predictions.shape[1]))
    out = np.zeros(len(predictions), np.bool_)
    _maze_valid(np.ascontiguousarray(predictions, np.uint8), np.ascontiguousarray(inputs, np.uint8), side, out)
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
