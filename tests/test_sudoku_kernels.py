"""numba sudoku kernels against plain-Python oracles: solution counts, ratings, generator."""
from __future__ import annotations

import numpy as np
import pytest

from hrm.builders.sudoku_kernels import (STAT_DEAD_ENDS, generate_batch, solve_batch, sudoku_tables)
from tests.sudoku_oracle import count_solutions, is_valid_solution, rate_reference

# A hard 9x9 puzzle ("AI Escargot") and a classic easy one, as digit strings
ESCARGOT = "100007090030020008009600500005300900010080002600004000300000010040000007007000300"
EASY = "530070000600195000098000060800060003400803001700020006060000280000419005000080079"


def _solve(puzzles: np.ndarray, box: int, cap: int = 2):
    peers, units = sudoku_tables(box)
    return solve_batch(np.asarray(puzzles, np.int8), peers, units, box * box, cap)


def _random_partial_grids(rng: np.random.Generator, count: int, box: int) -> np.ndarray:
    """Blanked random solutions (often several solutions), some with a clashing clue."""
    n = box * box
    peers, units = sudoku_tables(box)
    seeds = rng.integers(1, 2**63, count, dtype=np.uint64)
    _, solutions, _, _ = generate_batch(seeds, np.zeros(count, np.int64), peers, units, n, 0, 0)
    grids = solutions.copy()
    keep = rng.random(grids.shape) < rng.uniform(0.15, 0.6, (count, 1))
    grids[~keep] = 0
    clash = rng.random(count) < 0.2
    grids[clash, 0] = rng.integers(1, n + 1, clash.sum())
    return grids


def test_tables_have_the_right_peers():
    peers, units = sudoku_tables(3)
    assert peers.shape == (81, 20) and units.shape == (27, 9)
    assert sorted(peers[0].tolist()) == sorted(set(range(1, 9)) | {9 * r for r in range(1, 9)} | {10, 11, 19, 20})
    assert sudoku_tables(2)[0].shape == (16, 7)


@pytest.mark.parametrize("box", [2, 3])
def test_solution_counts_match_brute_force_on_random_grids(box):
    n = box * box
    rng = np.random.default_rng(box)
    grids = _random_partial_grids(rng, 60 if box == 2 else 12, box)
    counts, first, _ = _solve(grids, box)
    for grid, count, solution in zip(grids.tolist(), counts, first.tolist()):
        expected, expected_solution = count_solutions(grid, n)
        assert count == expected, grid
        if expected == 1:
            assert solution == expected_solution


def test_known_puzzles_unique_and_rated_like_the_reference_rater():
    puzzles = np.array([[int(ch) for ch in p] for p in (ESCARGOT, EASY)], np.int8)
    counts, first, stats = _solve(puzzles, 3)
    assert counts.tolist() == [1, 1]
    for puzzle, solution, dead_ends in zip(puzzles.tolist(), first.tolist(), stats[:, STAT_DEAD_ENDS]):
        assert is_valid_solution(solution, 9)
        assert all(p in (0, s) for p, s in zip(puzzle, solution))
        assert rate_reference(puzzle, 9) == (1, dead_ends)
    assert stats[1, STAT_DEAD_ENDS] == 0 and stats[0, STAT_DEAD_ENDS] > 0  # singles solve EASY


def test_ratings_match_reference_rater_on_generated_puzzles():
    peers, units = sudoku_tables(3)
    seeds = np.arange(11, 17, dtype=np.uint64)
    puzzles, _, ratings, _ = generate_batch(seeds, np.full(6, 3, np.int64), peers, units, 9, 0, 0)
    for puzzle, rating in zip(puzzles.tolist(), ratings):
        assert rate_reference(puzzle, 9) == (1, rating)
    # and on non-unique grids: same count (capped at 2) and the same dead ends
    grids = _random_partial_grids(np.random.default_rng(5), 8, 3)
    counts, _, stats = _solve(grids, 3)
    for grid, count, dead_ends in zip(grids.tolist(), counts, stats[:, STAT_DEAD_ENDS]):
        expected_count, expected_dead = rate_reference(grid, 9)
        assert count == expected_count
        if count:
            assert dead_ends == expected_dead


@pytest.mark.parametrize("box,count,steps", [(2, 40, 5), (3, 4, 4)])
def test_generated_puzzles_are_unique_minimal_and_labelled(box, count, steps):
    n = box * box
    peers, units = sudoku_tables(box)
    seeds = np.arange(100, 100 + count, dtype=np.uint64)
    puzzles, solutions, ratings, tried = generate_batch(seeds, np.full(count, steps, np.int64), peers,
                                                        units, n, 0, 0)
    assert (tried == steps).all() and (ratings >= 0).all()
    for puzzle, solution in zip(puzzles.tolist(), solutions.tolist()):
        assert is_valid_solution(solution, n)
        assert count_solutions(puzzle, n) == (1, solution)
        # minimal: removing any clue allows a second solution
        for cell in [c for c in range(n * n) if puzzle[c]][:8 if box == 3 else None]:
            reduced = list(puzzle)
            reduced[cell] = 0
            assert count_solutions(reduced, n)[0] == 2


def test_generation_depends_only_on_each_puzzles_seed():
    peers, units = sudoku_tables(2)
    seeds = np.random.SeedSequence(3).generate_state(24, np.uint64)
    steps = np.full(24, 3, np.int64)
    first = generate_batch(seeds, steps, peers, units, 4, 0, 0)
    again = generate_batch(seeds, steps, peers, units, 4, 0, 0)
    backwards = generate_batch(seeds[::-1].copy(), steps, peers, units, 4, 0, 0)
    for a, b, c in zip(first, again, backwards):
        assert np.array_equal(a, b) and np.array_equal(a, c[::-1])
    other = generate_batch(seeds + np.uint64(1), steps, peers, units, 4, 0, 0)
    assert not np.array_equal(first[0], other[0])


def test_min_rating_keeps_climbing():
    peers, units = sudoku_tables(3)
    seeds = np.arange(7, 11, dtype=np.uint64)
    _, _, ratings, tried = generate_batch(seeds, np.zeros(4, np.int64), peers, units, 9, 8, 2000)
    assert (ratings >= 8).all() and (tried > 0).any()
