"""Plain-Python sudoku oracles for the tests, independent of the numba kernels.

`count_solutions` is a brute-force backtracking solver (no propagation: it only picks the blank
with the fewest legal digits, so 9x9 minimal puzzles stay fast enough). `rate_reference`
re-implements the rater's definition from its documentation (naked + hidden singles to a fixed
point, fewest-candidates branching with lowest index on ties, digits in increasing order,
dead ends counted over the search capped at two solutions) with Python sets, to check the
kernel's counts.
"""
from __future__ import annotations

import itertools
import math


def units_of(n: int) -> list[list[int]]:
    box = math.isqrt(n)
    rows = [[r * n + c for c in range(n)] for r in range(n)]
    cols = [[r * n + c for r in range(n)] for c in range(n)]
    boxes = [[(br * box + i) * n + bc * box + j for i in range(box) for j in range(box)]
             for br in range(box) for bc in range(box)]
    return rows + cols + boxes


def is_valid_solution(grid: list[int], n: int) -> bool:
    return all(sorted(grid[c] for c in unit) == list(range(1, n + 1)) for unit in units_of(n))


def _legal(grid: list[int], cell: int, n: int, units: list[list[int]]) -> set[int]:
    used = {grid[c] for unit in units if cell in unit for c in unit}
    return set(range(1, n + 1)) - used


def count_solutions(puzzle: list[int], n: int, cap: int = 2) -> tuple[int, list[int] | None]:
    """(number of solutions up to `cap`, the first solution found)."""
    units = units_of(n)
    grid = list(puzzle)
    for cell, digit in enumerate(grid):  # clues must not clash
        if digit:
            grid[cell] = 0
            if digit not in _legal(grid, cell, n, units):
                return 0, None
            grid[cell] = digit
    found: list[list[int]] = []

    def recurse() -> None:
        blanks = [c for c in range(n * n) if grid[c] == 0]
        if not blanks:
            found.append(list(grid))
            return
        options = {c: _legal(grid, c, n, units) for c in blanks}
        cell = min(blanks, key=lambda c: len(options[c]))
        for digit in sorted(options[cell]):
            grid[cell] = digit
            recurse()
            grid[cell] = 0
            if len(found) >= cap:
                return

    recurse()
    return len(found), (found[0] if found else None)


def _propagate(cands: list[set[int]], n: int, units: list[list[int]], peers: list[set[int]]) -> bool:
    """Naked and hidden singles to a fixed point on candidate sets (a filled cell has one
    candidate and is marked in `fixed`); False on a contradiction."""
    changed = True
    while changed:
        changed = False
        for cell in range(n * n):
            if not cands[cell]:
                return False
        for cell in range(n * n):
            if len(cands[cell]) == 1:
                digit = next(iter(cands[cell]))
                for peer in peers[cell]:
                    if digit in cands[peer]:
                        cands[peer] = cands[peer] - {digit}
                        changed = True
                        if not cands[peer]:
                            return False
        for unit in units:
            for digit in range(1, n + 1):
                places = [c for c in unit if digit in cands[c]]
                if not places:
                    return False
                if len(places) == 1 and len(cands[places[0]]) > 1:
                    cands[places[0]] = {digit}
                    changed = True
    # two cells of a unit fixed to the same digit is a contradiction
    for unit in units:
        singles = [next(iter(cands[c])) for c in unit if len(cands[c]) == 1]
        if len(singles) != len(set(singles)):
            return False
    return True


def rate_reference(puzzle: list[int], n: int) -> tuple[int, int]:
    """(number of solutions up to 2, dead ends) by the rater's documented definition."""
    units = units_of(n)
    peers = [set().union(*(set(u) for u in units if cell in u)) - {cell} for cell in range(n * n)]
    cands = [{d} if d else set(range(1, n + 1)) for d in puzzle]
    for unit in units:  # clashing clues
        clues = [puzzle[c] for c in unit if puzzle[c]]
        if len(clues) != len(set(clues)):
            return 0, 0
    if not _propagate(cands, n, units, peers):
        return 0, 0
    state = {"solutions": 0, "dead_ends": 0}

    def recurse(cands: list[set[int]]) -> None:
        open_cells = [c for c in range(n * n) if len(cands[c]) > 1]
        if not open_cells:
            state["solutions"] += 1
            return
        cell = min(open_cells, key=lambda c: (len(cands[c]), c))
        for digit in sorted(cands[cell]):
            child = [set(s) for s in cands]
            child[cell] = {digit}
            if not _propagate(child, n, units, peers):
                state["dead_ends"] += 1
                continue
            recurse(child)
            if state["solutions"] >= 2:
                return

    recurse(cands)
    return min(state["solutions"], 2), state["dead_ends"]


def orbit_4x4(grid) -> set[bytes]:
    """Every transform of a flat 4x4 digit grid (int8 bytes), looping over the whole group:
    transpose or not, 8 band-preserving row orders, 8 column orders, 24 digit relabellings.
    A[r, c] = digit_map[T[rows[r], cols[c]]] with T the grid or its transpose."""
    grid = [[int(grid[i * 4 + j]) for j in range(4)] for i in range(4)]
    lines = [p for p in itertools.permutations(range(4)) if p[0] // 2 == p[1] // 2 and p[2] // 2 == p[3] // 2]
    orbit = set()
    for t in ([row[:] for row in grid], [list(col) for col in zip(*grid)]):
        for rows in lines:
            for cols in lines:
                for digits in itertools.permutations(range(1, 5)):
                    relabel = (0, *digits)
                    orbit.add(bytes(relabel[t[rows[r]][cols[c]]] for r in range(4) for c in range(4)))
    return orbit
