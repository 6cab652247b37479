"""numba kernels for sudoku: solver/rater, random solved grids, minimal (or fixed-blank) puzzles,
hardness search.

Grids are flat int8 arrays of n*n digits (n = box*box, 0 = blank). Candidates are bit masks
(bit d-1 set = digit d still possible). Every kernel takes the peer/unit tables of
`sudoku_tables(box)`, so one compiled kernel serves 4x4 and 9x9.

The solver is a deterministic depth-first search with constraint propagation:
  * propagation repeats naked singles (a cell with one candidate) and hidden singles (a digit
    with one place left in a row, column or box) until nothing changes, and fails when a cell
    has no candidate or a unit has no place left for a missing digit;
  * branching picks the empty cell with the fewest candidates (lowest index on ties) and tries
    its digits in increasing order.
Its statistics (`stats`, indexed by STAT_*) give the rating: the number of DEAD ENDS,
i.e. branch assignments whose propagation failed, counted over the whole search tree that
finds the solution and proves that there is no second one (search with cap 2). A puzzle solved
by singles alone rates 0. Every dead end is one backtrack.

Randomness comes from an explicit splitmix64 stream (`augment.random_stream`, state uint64[1])
per puzzle, never from numba's global generator, so parallel loops give the same bytes
whatever the thread schedule.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import njit, prange

from hrm.augment.random_stream import rng_below, shuffle
from hrm.common.kernels import copy_into

MAX_DIGITS = 9  # box 3; masks and tables below cover up to 9 digits

# popcount and "lowest set bit as a digit" for every 9-bit mask
_POPCOUNT = np.array([bin(m).count("1") for m in range(1 << MAX_DIGITS)], np.int8)
_LOWEST_DIGIT = np.array([0] + [(m & -m).bit_length() for m in range(1, 1 << MAX_DIGITS)], np.int8)

# indices of the statistics array filled by the search
STAT_DEAD_ENDS = 0  # dead ends over the whole (capped) search: the rating
STAT_DEAD_ENDS_FIRST = 1  # dead ends before the first solution was found
STAT_GUESSES = 2  # branch assignments tried
NUM_STATS = 3


@lru_cache(maxsize=None)
def sudoku_tables(box: int) -> tuple[np.ndarray, np.ndarray]:
    """(peers int16[N, P], units int16[3n, n]) for the sudoku with n = box*box digits, N = n*n.

    peers[c] lists the P cells sharing a row, column or box with cell c (P = 20 for 9x9, 7 for
    4x4); units lists the cells of every row, then every column, then every box."""
    n = box * box
    rows = [[r * n + c for c in range(n)] for r in range(n)]
    cols = [[r * n + c for r in range(n)] for c in range(n)]
    boxes = [[(br * box + i) * n + bc * box + j for i in range(box) for j in range(box)]
             for br in range(box) for bc in range(box)]
    units = np.array(rows + cols + boxes, np.int16)
    peers = []
    for cell in range(n * n):
        seen = sorted({p for unit in units.tolist() if cell in unit for p in unit} - {cell})
        peers.append(seen)
    return np.array(peers, np.int16), units


# ----------------------------------------------------------------------------- solver


@njit(cache=True)
def _assign(values, cand, cell, digit, peers) -> None:
    values[cell] = digit
    cand[cell] = 0
    clear = ~(1 << (digit - 1))
    for k in range(peers.shape[1]):
        cand[peers[cell, k]] &= clear


@njit(cache=True)
def _propagate(values, cand, peers, units, n) -> int:
    """Naked + hidden singles to a fixed point. Returns -1 (contradiction), 0 (open), 1 (solved)."""
    full = (1 << n) - 1
    size = values.shape[0]
    while True:
        changed = False
        empty = 0
        for cell in range(size):
            if values[cell] == 0:
                m = cand[cell]
                if m == 0:
                    return -1
                if m & (m - 1) == 0:
                    _assign(values, cand, cell, _LOWEST_DIGIT[m], peers)
                    changed = True
                else:
                    empty += 1
        if empty == 0:
            return 1
        for u in range(units.shape[0]):
            once = 0
            twice = 0
            placed = 0
            for k in range(n):
                cell = units[u, k]
                if values[cell] != 0:
                    placed |= 1 << (values[cell] - 1)
                else:
                    twice |= once & cand[cell]
                    once |= cand[cell]
            if (once | placed) != full:
                return -1
            hidden = once & ~twice
            while hidden:
                bit = hidden & -hidden
                hidden ^= bit
                target = -1
                for k in range(n):
                    if values[units[u, k]] == 0 and cand[units[u, k]] & bit:
                        target = units[u, k]
                        break
                if target >= 0:
                    _assign(values, cand, target, _LOWEST_DIGIT[bit], peers)
                    changed = True
                else:
                    # the digit's only place was just filled with another hidden single,
                    # or the digit was placed meanwhile (then not a contradiction)
                    placed_now = False
                    for k in range(n):
                        if values[units[u, k]] == _LOWEST_DIGIT[bit]:
                            placed_now = True
                    if not placed_now:
                        return -1
        if not changed:
            return 0


@njit(cache=True)
def _choose_cell(values, cand) -> int:
    """The empty cell with the fewest candidates (lowest index on ties)."""
    best, best_count = -1, 99
    for cell in range(values.shape[0]):
        if values[cell] == 0:
            count = _POPCOUNT[cand[cell]]
            if count < best_count:
                best, best_count = cell, count
                if count == 2:
                    break
    return best


@njit(cache=True)
def _pick_bit(mask, randomise, rng) -> int:
    if not randomise:
        return mask & -mask
    k = rng_below(rng, _POPCOUNT[mask])
    for _ in range(k):
        mask &= mask - 1
    return mask & -mask


@njit(cache=True)
def new_workspace(size: int):
    """Per-thread search stacks: values and candidates per depth, branch cell and mask."""
    return (np.zeros((size + 1, size), np.int8), np.zeros((size + 1, size), np.int32),
            np.zeros(size + 1, np.int32), np.zeros(size + 1, np.int32))


# One compiled search for every caller. Typed lazily, each call site's constant arguments (cap 1
# or 2, randomise True or False, the exclusion given or not) would be a type of their own and
# compile a search each: 2 s apiece on a cold cache.
_SEARCH_SIGNATURE = ("int64(int8[::1], int16[:, ::1], int16[:, ::1], int64, int64, boolean, uint64[::1], "
                     "Tuple((int8[:, ::1], int32[:, ::1], int32[::1], int32[::1])), int8[:, ::1], int64[::1], "
                     "int64, int64)")


@njit(_SEARCH_SIGNATURE, cache=True)
def search(puzzle, peers, units, n, cap, randomise, rng, workspace, solutions, stats,
           exclude_cell, exclude_digit) -> int:
    """Depth-first search; returns the number of solutions found, stopping at `cap`.

    The first min(cap, len(solutions)) solutions are written to `solutions` [k, N];
    `stats` int64[NUM_STATS] receives dead ends (total, before the first solution) and guesses.
    With `randomise`, digits are tried in random order (used to draw random solved grids).
    `exclude_cell`/`exclude_digit` forbid one digit in one blank cell (used by `minimise`; -1, 0: none)."""
    stack_values, stack_cand, branch_cell, branch_mask = workspace
    size = puzzle.shape[0]
    stats[:] = 0
    values = stack_values[0]
    cand = stack_cand[0]
    full = (1 << n) - 1
    for cell in range(size):
        values[cell] = 0
        cand[cell] = full
    for cell in range(size):
        digit = puzzle[cell]
        if digit != 0:
            if digit < 0 or digit > n or (cand[cell] >> (digit - 1)) & 1 == 0:
                return 0  # clue outside 1..n or repeated in a row, column or box
            _assign(values, cand, cell, digit, peers)
    if exclude_cell >= 0:
        cand[exclude_cell] &= ~(1 << (exclude_digit - 1))
    status = _propagate(values, cand, peers, units, n)
    if status < 0:
        return 0
    if status == 1:
        if solutions.shape[0] > 0:
            copy_into(solutions[0], values)
        return 1
    found = 0
    depth = 0
    branch_cell[0] = _choose_cell(values, cand)
    branch_mask[0] = cand[branch_cell[0]]
    while depth >= 0:
        mask = branch_mask[depth]
        if mask == 0:
            depth -= 1
            continue
        bit = _pick_bit(mask, randomise, rng)
        branch_mask[depth] = mask & ~bit
        stats[STAT_GUESSES] += 1
        values = stack_values[depth + 1]
        cand = stack_cand[depth + 1]
        copy_into(values, stack_values[depth])
        copy_into(cand, stack_cand[depth])
        _assign(values, cand, branch_cell[depth], _LOWEST_DIGIT[bit], peers)
        status = _propagate(values, cand, peers, units, n)
        if status < 0:
            stats[STAT_DEAD_ENDS] += 1
            if found == 0:
                stats[STAT_DEAD_ENDS_FIRST] += 1
            continue
        if status == 1:
            if found < solutions.shape[0]:
                copy_into(solutions[found], values)
            found += 1
            if found >= cap:
                break
            continue
        depth += 1
        branch_cell[depth] = _choose_cell(values, cand)
        branch_mask[depth] = cand[branch_cell[depth]]
    return found


@njit(cache=True, parallel=True, nogil=True)
def solve_batch(puzzles, peers, units, n, cap):
    """Solve every row of `puzzles` int8[B, N], C-contiguous (cap solutions each, in parallel).

    Returns (counts int64[B], first solution int8[B, N] (zeros when none), stats int64[B, NUM_STATS])."""
    count = puzzles.shape[0]
    size = puzzles.shape[1]
    counts = np.zeros(count, np.int64)
    first = np.zeros((count, size), np.int8)
    stats = np.zeros((count, NUM_STATS), np.int64)
    for i in prange(count):
        workspace = new_workspace(size)
        solutions = np.zeros((1, size), np.int8)
        rng = np.zeros(1, np.uint64)
        counts[i] = search(puzzles[i], peers, units, n, cap, False, rng, workspace, solutions, stats[i], -1, 0)
        if counts[i] > 0:
            copy_into(first[i], solutions[0])
    return counts, first, stats


# ----------------------------------------------------------------------------- generator


@njit(cache=True)
def random_solution(peers, units, n, rng, workspace) -> np.ndarray:
    """A random solved grid: the solver on an empty grid, trying digits in random order."""
    size = n * n
    solutions = np.zeros((1, size), np.int8)
    stats = np.zeros(NUM_STATS, np.int64)
    search(np.zeros(size, np.int8), peers, units, n, 1, True, rng, workspace, solutions, stats, -1, 0)
    return solutions[0].copy()


@njit(cache=True)
def minimise(puzzle, peers, units, n, rng, workspace, stop_at_blanks=-1) -> None:
    """Remove clues of a unique `puzzle` (in place) in random order while it stays unique,
    stopping once it has `stop_at_blanks` blanks (-1: no limit).

    One full pass gives a minimal puzzle: a clue that had to stay when more clues were present
    still has to stay once others are gone (fewer clues never make a puzzle more constrained).
    Without clue c = v the puzzle stays unique iff no solution has c != v, so each test is a
    search for ONE solution with v forbidden at c (cheaper than counting to two)."""
    size = puzzle.shape[0]
    order = np.arange(size)
    shuffle(order, rng)
    solutions = np.zeros((1, size), np.int8)
    stats = np.zeros(NUM_STATS, np.int64)
    blanks = 0
    for cell in range(size):
        blanks += puzzle[cell] == 0
    for cell in order:
        if blanks == stop_at_blanks:
            return
        digit = puzzle[cell]
        if digit == 0:
            continue
        puzzle[cell] = 0
        if search(puzzle, peers, units, n, 1, False, rng, workspace, solutions, stats, cell, digit) != 0:
            puzzle[cell] = digit
        else:
            blanks += 1


@njit(cache=True)
def rate(puzzle, peers, units, n, workspace) -> int:
    """The rating of a unique puzzle: dead ends of the full search (cap 2). -1 if not unique."""
    size = puzzle.shape[0]
    solutions = np.zeros((2, size), np.int8)
    stats = np.zeros(NUM_STATS, np.int64)
    rng = np.zeros(1, np.uint64)
    if search(puzzle, peers, units, n, 2, False, rng, workspace, solutions, stats, -1, 0) != 1:
        return -1
    return stats[STAT_DEAD_ENDS]


@njit(cache=True)
def _complete_to_unique(puzzle, solution, peers, units, n, rng, workspace) -> None:
    """Add clues from `solution` until `puzzle` is unique: each added clue is a cell where two
    found solutions differ, so it rules out at least one of them."""
    size = puzzle.shape[0]
    solutions = np.zeros((2, size), np.int8)
    stats = np.zeros(NUM_STATS, np.int64)
    differing = np.zeros(size, np.int64)
    while search(puzzle, peers, units, n, 2, False, rng, workspace, solutions, stats, -1, 0) != 1:
        count = 0
        for cell in range(size):
            if solutions[0, cell] != solutions[1, cell]:
                differing[count] = cell
                count += 1
        cell = differing[rng_below(rng, count)]
        puzzle[cell] = solution[cell]


@njit(cache=True)
def harden_step(puzzle, solution, peers, units, n, rng, workspace) -> np.ndarray:
    """One hill-climbing proposal: swap a random clue for a random blank cell (clue taken from
    the solution), add clues until unique, re-minimise. Returns the new minimal puzzle."""
    clues = np.flatnonzero(puzzle)
    blanks = np.flatnonzero(puzzle == 0)
    proposal = puzzle.copy()
    proposal[clues[rng_below(rng, len(clues))]] = 0
    added = blanks[rng_below(rng, len(blanks))]
    proposal[added] = solution[added]
    _complete_to_unique(proposal, solution, peers, units, n, rng, workspace)
    minimise(proposal, peers, units, n, rng, workspace)
    return proposal


@njit(cache=True)
def generate_one(peers, units, n, rng, workspace, steps, min_rating, max_steps):
    """A minimal unique puzzle made hard by hill-climbing on its clue set.

    Start: random solved grid, minimal puzzle by random clue removal. Then `steps` proposals of
    `harden_step`, each kept when its rating is not lower (so plateaus are crossed). If the
    rating is still below `min_rating`, climbing continues up to `max_steps` proposals in all.
    Returns (puzzle, solution, rating, proposals tried)."""
    solution = random_solution(peers, units, n, rng, workspace)
    puzzle = solution.copy()
    minimise(puzzle, peers, units, n, rng, workspace)
    rating = rate(puzzle, peers, units, n, workspace)
    tried = 0
    while tried < steps or (rating < min_rating and tried < max_steps):
        proposal = harden_step(puzzle, solution, peers, units, n, rng, workspace)
        proposal_rating = rate(proposal, peers, units, n, workspace)
        tried += 1
        if proposal_rating >= rating:
            puzzle, rating = proposal, proposal_rating
    return puzzle, solution, rating, tried


@njit(cache=True, parallel=True, nogil=True)
def generate_batch(seeds, steps, peers, units, n, min_rating, max_steps):
    """Puzzle i of the batch from the splitmix stream seeded with seeds[i] (uint64), `steps[i]`
    hill-climbing proposals; in parallel, identical output whatever the thread schedule.

    Returns (puzzles int8[B, N], solutions int8[B, N], ratings int64[B], proposals int64[B])."""
    count = seeds.shape[0]
    size = n * n
    puzzles = np.zeros((count, size), np.int8)
    solutions = np.zeros((count, size), np.int8)
    ratings = np.zeros(count, np.int64)
    tried = np.zeros(count, np.int64)
    for i in prange(count):
        rng = np.full(1, seeds[i], np.uint64)
        workspace = new_workspace(size)
        puzzle, solution, rating, proposals = generate_one(peers, units, n, rng, workspace, steps[i],
                                                           min_rating, max_steps)
        copy_into(puzzles[i], puzzle)
        copy_into(solutions[i], solution)
        ratings[i] = rating
        tried[i] = proposals
    return puzzles, solutions, ratings, tried


@njit(cache=True, parallel=True, nogil=True)
def generate_blanks_batch(seeds, blanks, peers, units, n, max_tries):
    """Puzzle i: a random solved grid with clues removed in random order while the puzzle stays
    unique, until exactly `blanks` cells are blank (not minimal, no hardness search). A pass that
    ends minimal with fewer blanks starts again from a new grid, up to `max_tries` grids.

    Returns (puzzles int8[B, N], solutions int8[B, N], ratings int64[B], grids tried int64[B]);
    the rating is -1 where no grid of the `max_tries` reached `blanks`."""
    count = seeds.shape[0]
    size = n * n
    puzzles = np.zeros((count, size), np.int8)
    solutions = np.zeros((count, size), np.int8)
    ratings = np.full(count, -1, np.int64)
    tried = np.zeros(count, np.int64)
    for i in prange(count):
        rng = np.full(1, seeds[i], np.uint64)
        workspace = new_workspace(size)
        while tried[i] < max_tries and ratings[i] < 0:
            tried[i] += 1
            solution = random_solution(peers, units, n, rng, workspace)
            puzzle = solution.copy()
            minimise(puzzle, peers, units, n, rng, workspace, blanks)
            if (puzzle == 0).sum() == blanks:
                ratings[i] = rate(puzzle, peers, units, n, workspace)
            copy_into(puzzles[i], puzzle)
            copy_into(solutions[i], solution)
    return puzzles, solutions, ratings, tried
