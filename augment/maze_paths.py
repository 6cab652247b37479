"""Maze tokens, breadth-first search and the shortest-path check (SPEC 3): what makes a maze
label (or a model's prediction) right.

The builder checks imported labels with `check_solutions` and eval scores predictions with it,
so both hold a path to the same rule; the generator (`builders.maze_kernels`) searches with the
same `bfs`. A maze is a flat array of `side * side` cells (row-major); `open_cells[i]` is 1 where
cell i is not a wall. Cells connect to their 4 neighbours. Path length = number of moves from S
to G (the BFS distance); a path of length L covers L + 1 cells, L - 1 of them marked `o`.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

WALL, OPEN, START, GOAL, PATH = 1, 2, 3, 4, 5  # tokens (reference charset "# SGo" -> 1..5)
COUNT_CAP = 1 << 30  # shortest-path counts saturate here (fits int32)


@njit(cache=True)
def bfs(open_cells: np.ndarray, side: int, source: int, dist: np.ndarray, order: np.ndarray,
        stop_at: int = -1) -> int:
    """Breadth-first search from `source` over open cells. Fills `dist` (int32, -1 = not
    reached) and `order` (cells in visiting order, so distances never decrease along it);
    returns the number of cells reached. With `stop_at` >= 0 it stops once that cell is
    reached: every cell nearer than it already has its distance, which is all a path needs."""
    dist[:] = -1
    dist[source] = 0
    order[0] = source
    head, tail = 0, 1
    while head < tail:
        cell = order[head]
        head += 1
        row = cell // side
        col = cell - row * side
        d = dist[cell] + 1
        for k in range(4):
            if k == 0:
                if row == 0:
                    continue
                nb = cell - side
            elif k == 1:
                if row == side - 1:
                    continue
                nb = cell + side
            elif k == 2:
                if col == 0:
                    continue
                nb = cell - 1
            else:
                if col == side - 1:
                    continue
                nb = cell + 1
            if open_cells[nb] and dist[nb] < 0:
                dist[nb] = d
                order[tail] = nb
                tail += 1
                if nb == stop_at:
                    return tail
    return tail


@njit(cache=True)
def predecessors(side: int, dist: np.ndarray, cell: int, out: np.ndarray) -> int:
    """Neighbours of `cell` one BFS layer nearer the source (written to `out`); their number."""
    row = cell // side
    col = cell - row * side
    want = dist[cell] - 1
    n = 0
    if row > 0 and dist[cell - side] == want:
        out[n] = cell - side
        n += 1
    if row < side - 1 and dist[cell + side] == want:
        out[n] = cell + side
        n += 1
    if col > 0 and dist[cell - 1] == want:
        out[n] = cell - 1
        n += 1
    if col < side - 1 and dist[cell + 1] == want:
        out[n] = cell + 1
        n += 1
    return n


@njit(cache=True)
def count_shortest_paths(side: int, dist: np.ndarray, order: np.ndarray, reached: int,
                         target: int, cap: int = COUNT_CAP) -> int:
    """Number of shortest paths from the BFS source to `target`, saturating at `cap`.
    A cell's count is the sum over its predecessor layer; `order` visits layers in turn."""
    if dist[target] < 0:
        return 0
    counts = np.zeros(len(dist), np.int64)
    counts[order[0]] = 1
    preds = np.empty(4, np.int64)
    for i in range(1, reached):
        cell = order[i]
        n = predecessors(side, dist, cell, preds)
        total = 0
        for j in range(n):
            total += counts[preds[j]]
        counts[cell] = min(total, cap)
        if cell == target:
            break
    return counts[target]


# Result codes of `check_solutions` (the Python side turns them into messages).
CHECK_OK, CHECK_UNREACHABLE, CHECK_PATH_BROKEN, CHECK_PATH_LONGER = 0, 1, 2, 3


@njit(cache=True)
def _open_start_goal(tokens: np.ndarray, open_cells: np.ndarray) -> tuple[int, int]:
    """Fill `open_cells` from maze tokens; return the (last) S and G cells (-1 if absent)."""
    start = goal = -1
    for i in range(len(tokens)):
        open_cells[i] = tokens[i] != WALL
        if tokens[i] == START:
            start = i
        elif tokens[i] == GOAL:
            goal = i
    return start, goal


@njit(cache=True)
def check_solution(side: int, inputs: np.ndarray, labels: np.ndarray) -> tuple[int, int, int, int]:
    """(code, shortest length, marked length, number of shortest paths) for one maze with
    exactly one S and one G whose label differs from the input only by `o` on open cells
    (checked beforehand). The marked cells plus S and G must hold exactly shortest + 1 cells
    and connect S to G: such a set is one shortest path (an S-G walk inside it needs at least
    shortest + 1 cells, so it uses all of them and no other)."""
    cells = side * side
    open_cells = np.empty(cells, np.uint8)
    start, goal = _open_start_goal(inputs, open_cells)
    marked = np.empty(cells, np.uint8)
    n_marked = 0
    for i in range(cells):
        marked[i] = labels[i] == PATH or labels[i] == START or labels[i] == GOAL
        n_marked += marked[i]
    dist = np.empty(cells, np.int32)
    order = np.empty(cells, np.int32)
    reached = bfs(open_cells, side, start, dist, order)
    shortest = dist[goal]
    if shortest < 0:
        return CHECK_UNREACHABLE, -1, n_marked - 1, 0
    count = count_shortest_paths(side, dist, order, reached, goal)
    bfs(marked, side, start, dist, order, goal)
    if dist[goal] < 0:
        return CHECK_PATH_BROKEN, shortest, n_marked - 1, count
    if n_marked != shortest + 1:
        return CHECK_PATH_LONGER, shortest, n_marked - 1, count
    return CHECK_OK, shortest, shortest, count


@njit(cache=True, parallel=True)
def check_solutions(side: int, inputs: np.ndarray, labels: np.ndarray, codes: np.ndarray,
                    lengths: np.ndarray, marked: np.ndarray, counts: np.ndarray) -> None:
    """`check_solution` for every row (outputs: codes, shortest lengths, marked lengths and
    shortest-path counts, one per row)."""
    for i in prange(len(codes)):
        codes[i], lengths[i], marked[i], counts[i] = check_solution(side, inputs[i], labels[i])
