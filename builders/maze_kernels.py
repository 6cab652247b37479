"""numba kernels for Maze-Hard: a constructive random-wall maze generator, BFS, shortest-path
extraction and counting, and validation of imported solutions.

A maze is a flat array of `side * side` cells (row-major); `open_cells[i]` is 1 where cell i
is not a wall. Cells connect to their 4 neighbours. Path length = number of moves from S to G
(the BFS distance); a path of length L covers L + 1 cells, L - 1 of them marked `o`.

Randomness comes from a splitmix64 stream per maze, seeded from (seed, split, maze index), so
a maze depends only on those three numbers: results are byte-identical whatever the number of
threads or the batch size.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

WALL, OPEN, START, GOAL, PATH = 1, 2, 3, 4, 5  # tokens (reference charset "# SGo" -> 1..5)
COUNT_CAP = 1 << 30  # shortest-path counts saturate here (fits int32)

# Give up on one random wall draw after this many walling steps without success, and on a maze
# (reporting failure) after this many draws: bounds the time an infeasible --min-path can take.
_MAX_RESTARTS = 20

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S27, _S30, _S31, _S32, _S11 = (np.uint64(k) for k in (27, 30, 31, 32, 11))


# ----------------------------------------------------------------------------- random numbers


@njit(cache=True)
def mix64(x: np.uint64) -> np.uint64:
    """splitmix64 finaliser: a bijective scramble of 64 bits."""
    x = (x ^ (x >> _S30)) * _MIX1
    x = (x ^ (x >> _S27)) * _MIX2
    return x ^ (x >> _S31)


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


# ----------------------------------------------------------------------------- BFS and paths


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
def _predecessors(side: int, dist: np.ndarray, cell: int, out: np.ndarray) -> int:
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
def extract_path(side: int, dist: np.ndarray, goal: int, state: np.ndarray, path: np.ndarray) -> int:
    """Walk back from `goal` to the BFS source along decreasing distances, writing the cells
    goal..source into `path`; returns the path length (moves). At a fork the predecessor is
    drawn from `state` (so every shortest path can come out); an empty `state` takes the first."""
    length = dist[goal]
    candidates = np.empty(4, np.int64)
    cell = goal
    path[0] = goal
    for step in range(1, length + 1):
        n = _predecessors(side, dist, cell, candidates)
        cell = candidates[_below(state, n)] if len(state) and n > 1 else candidates[0]
        path[step] = cell
    return length


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
        n = _predecessors(side, dist, cell, preds)
        total = 0
        for j in range(n):
            total += counts[preds[j]]
        counts[cell] = min(total, cap)
        if cell == target:
            break
    return counts[target]


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
        saved[:] = dist  # restoring is cheaper than a second BFS when the wall is undone
        bfs(open_cells, side, start, dist, order, goal)
        if dist[goal] < 0:
            open_cells[cell] = 1
            frozen[cell] = 1
            dist[:] = saved
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
        labels[:] = inputs
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


# ----------------------------------------------------------------------------- validation

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
