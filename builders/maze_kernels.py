"""numba kernels for Maze-Hard: a constructive random-wall maze generator and shortest-path
extraction. The maze tokens, BFS, path counting and the check of a solution are the rules that
eval scores by too, so they live in `augment.maze_paths`.

Randomness comes from a splitmix64 stream per maze, seeded from (seed, split, maze index), so
a maze depends only on those three numbers: results are byte-identical whatever the number of
threads or the batch size.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from hrm.augment.maze_paths import GOAL, OPEN, PATH, START, WALL, bfs, count_shortest_paths, predecessors
from hrm.augment.random_stream import mix64
from hrm.common.kernels import copy_into

# Give up on one random wall draw after this many walling steps without success, and on a maze
# (reporting failure) after this many draws: bounds the time an infeasible --min-path can take.
_MAX_RESTARTS = 20

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_S32, _S11 = np.uint64(32), np.uint64(11)


# ----------------------------------------------------------------------------- random numbers


@njit(cache=True)
def maze_seed(base: np.uint64, index: np.int64) -> np.uint64:
    """The RNG state of maze `index` of a stream whose base is `base`."""
    # Explicit uint64: numba would compute int64 + uint64 in float64.
    return mix64(np.uint64(base) + np.uint64(index) * _GAMMA)


@njit(cache=True)
def _next(state: np.ndarray) -> np.uint64:
    state[0] += _GAMMA
    return mix64(state[0])


@njit(cache=True)
def _below(state: np.ndarray, n: np.int64) -> np.int64:
    """Uniform integer in [0, n) for 0 < n < 2**32 (multiply-shift on 32 random bits)."""
    return np.int64(((_next(state) >> _S32) * np.uint64(n)) >> _S32)


@njit(cache=True)
def _uniform(state: np.ndarray) -> float:
    return np.float64(_next(state) >> _S11) * (1.0 / 9007199254740992.0)


# ----------------------------------------------------------------------------- paths


@njit(cache=True)
def extract_path(side: int, dist: np.ndarray, goal: int, state: np.ndarray, path: np.ndarray) -> int:
    """Walk back from `goal` to the BFS source along decreasing distances, writing the cells
    goal..source into `path`; returns the path length (moves). At a fork the predecessor is
    drawn from `state` (so every shortest path can come out); an empty `state` takes the first."""
    length = dist[goal]
    candidates = np.empty(4, np.int64)
    cell = goal
    path[0] = goal
    for step in range(1, length + 1):
        n = predecessors(side, dist, cell, candidates)
        cell = candidates[_below(state, n)] if len(state) and n > 1 else candidates[0]
        path[step] = cell
    return length


# ----------------------------------------------------------------------------- generation


@njit(cache=True)
def _random_walls(state: np.ndarray, open_cells: np.ndarray, density: float) -> int:
    n_open = 0
    for i in range(len(open_cells)):
        is_open = _uniform(state) >= density
        open_cells[i] = is_open
        n_open += is_open
    return n_open


@njit(cache=True)
def _nth_open(open_cells: np.ndarray, k: int) -> int:
    for i in range(len(open_cells)):
        if open_cells[i]:
            if k == 0:
                return i
            k -= 1
    return -1


@njit(cache=True)
def _lengthen(state, open_cells, side, start, goal, min_path, dist, order, path, frozen) -> int:
    """Wall random cells of the current shortest path while the goal stays reachable, until the
    distance reaches `min_path`. A cell whose walling cuts S from G is reopened and frozen (it
    stays a cut cell as walls are added). Returns the final distance, or -1 when every inner
    cell of the path is a cut cell (the path is a single corridor and cannot grow)."""
    bfs(open_cells, side, start, dist, order, goal)
    length = dist[goal]
    frozen[:] = 0
    candidates = np.empty(len(open_cells), np.int64)
    saved = np.empty_like(dist)
    while length < min_path:
        extract_path(side, dist, goal, state, path)
        n = 0
        for i in range(1, length):
            if not frozen[path[i]]:
                candidates[n] = path[i]
                n += 1
        if n == 0:
            return -1
        cell = candidates[_below(state, n)]
        open_cells[cell] = 0
        copy_into(saved, dist)  # restoring is cheaper than a second BFS when the wall is undone
        bfs(open_cells, side, start, dist, order, goal)
        if dist[goal] < 0:
            open_cells[cell] = 1
            frozen[cell] = 1
            copy_into(dist, saved)
        length = dist[goal]
    return length


@njit(cache=True)
def _make_unique(state, open_cells, side, start, goal, dist, dist_goal, order, path) -> None:
    """Wall, one at a time and at random, cells that lie on some shortest path but not on one
    chosen shortest path, until that path is the only one. The chosen path stays intact, so the
    distance does not change. Leaves `path` holding the unique path."""
    reached = bfs(open_cells, side, start, dist, order)
    length = dist[goal]
    extract_path(side, dist, goal, state, path)
    on_path = np.zeros(len(open_cells), np.uint8)
    for i in range(length + 1):
        on_path[path[i]] = 1
    candidates = np.empty(len(open_cells), np.int64)
    while count_shortest_paths(side, dist, order, reached, goal) > 1:
        bfs(open_cells, side, goal, dist_goal, order)
        n = 0
        for cell in range(len(open_cells)):
            if (not on_path[cell] and dist[cell] >= 0 and dist_goal[cell] >= 0
                    and dist[cell] + dist_goal[cell] == length):
                candidates[n] = cell
                n += 1
        open_cells[candidates[_below(state, n)]] = 0
        reached = bfs(open_cells, side, start, dist, order)


@njit(cache=True)
def generate_maze(seed: np.uint64, side: int, min_path: int, density: float, unique: bool,
                  inputs: np.ndarray, labels: np.ndarray) -> tuple[int, int]:
    """One maze into `inputs`/`labels` (uint8 tokens [side*side]); returns (path length,
    number of shortest paths), or (-1, 0) when no maze reached `min_path` in the allowed draws.

    Draw: walls i.i.d. with probability `density`; S = a random open cell; G = a random cell
    among those farthest from S; then `_lengthen` (and `_make_unique` with `unique`)."""
    cells = side * side
    state = np.empty(1, np.uint64)
    state[0] = seed
    open_cells = np.empty(cells, np.uint8)
    dist = np.empty(cells, np.int32)
    dist_goal = np.empty(cells, np.int32)
    order = np.empty(cells, np.int32)
    path = np.empty(cells, np.int64)
    frozen = np.empty(cells, np.uint8)
    for _ in range(_MAX_RESTARTS):
        n_open = _random_walls(state, open_cells, density)
        if n_open <= min_path:
            continue
        start = _nth_open(open_cells, _below(state, n_open))
        reached = bfs(open_cells, side, start, dist, order)
        if reached <= min_path:  # the start's region cannot hold a long enough path
            continue
        farthest = dist[order[reached - 1]]
        first = reached - 1
        while dist[order[first - 1]] == farthest:
            first -= 1
        goal = order[first + _below(state, reached - first)]
        length = _lengthen(state, open_cells, side, start, goal, min_path, dist, order, path, frozen)
        if length < 0:
            continue
        if unique:
            _make_unique(state, open_cells, side, start, goal, dist, dist_goal, order, path)
            count = 1
        else:
            reached = bfs(open_cells, side, start, dist, order)
            count = count_shortest_paths(side, dist, order, reached, goal)
            extract_path(side, dist, goal, state, path)
        for i in range(cells):
            inputs[i] = OPEN if open_cells[i] else WALL
        inputs[start] = START
        inputs[goal] = GOAL
        copy_into(labels, inputs)
        for i in range(1, length):
            labels[path[i]] = PATH
        return length, count
    return -1, 0


@njit(cache=True, parallel=True)
def generate_batch(base: np.uint64, first_index: int, side: int, min_path: int, density: float,
                   unique: bool, inputs: np.ndarray, labels: np.ndarray, lengths: np.ndarray,
                   counts: np.ndarray) -> None:
    """Mazes first_index .. first_index + len(lengths) - 1 of the stream `base`, in parallel.
    Row i depends only on (base, first_index + i): threads never share a random stream."""
    for i in prange(len(lengths)):
        length, count = generate_maze(maze_seed(base, first_index + i), side, min_path, density,
                                      unique, inputs[i], labels[i])
        lengths[i] = length
        counts[i] = count
