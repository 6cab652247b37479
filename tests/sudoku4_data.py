"""A tiny 4x4 sudoku dataset for the trainer's tests, written with DatasetWriter.

Independent of the sudoku builder: all 288 4x4 solution grids are enumerated by brute force,
and a puzzle blanks `blanks` cells such that exactly one of the 288 grids matches the givens.
Tokens as the reference: 0 pad, 1 blank, digit d -> d + 1 (vocab 6, seq_len 16).
"""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from hrm.builders.dataset import DatasetWriter, atomic_directory


def all_grids() -> np.ndarray:
    """Every valid 4x4 sudoku solution, [288, 16] digits 1..4."""
    rows = list(itertools.permutations(range(1, 5)))
    grids = []
    for a, b, c, d in itertools.product(rows, repeat=4):
        grid = np.array([a, b, c, d])
        if any(len(set(grid[:, j])) < 4 for j in range(4)):
            continue
        if any(len(set(grid[r:r + 2, col:col + 2].ravel())) < 4 for r in (0, 2) for col in (0, 2)):
            continue
        grids.append(grid.ravel())
    return np.array(grids, np.uint8)


def make_puzzles(count: int, blanks: int, rng: np.random.Generator, grids: np.ndarray,
                 exclude: set[bytes] = frozenset()) -> tuple[np.ndarray, np.ndarray]:
    """`count` distinct unique-solution puzzles (inputs with 0 = blank, solutions), none in `exclude`."""
    inputs, labels, seen = [], [], set(exclude)
    while len(inputs) < count:
        solution = grids[rng.integers(len(grids))]
        puzzle = solution.copy()
        puzzle[rng.choice(16, blanks, replace=False)] = 0
        given = puzzle > 0
        if (grids[:, given] == puzzle[given]).all(axis=1).sum() != 1 or puzzle.tobytes() in seen:
            continue
        seen.add(puzzle.tobytes())
        inputs.append(puzzle)
        labels.append(solution)
    return np.array(inputs), np.array(labels)


def write_sudoku4(out: Path, *, train_size: int = 400, test_size: int = 100, blanks: int = 6,
                  seed: int = 0, identifiers: int = 0) -> Path:
    """With `identifiers` > 0, puzzle i gets identifier name p{i % identifiers} (so the puzzle
    embedding has that many trained rows); otherwise every puzzle has the blank identifier."""
    rng = np.random.default_rng(seed)
    grids = all_grids()
    train_in, train_lab = make_puzzles(train_size, blanks, rng, grids)
    test_in, test_lab = make_puzzles(test_size, blanks, rng, grids,
                                     exclude={p.tobytes() for p in train_in})
    with atomic_directory(out, force=True) as tmp:
        writer = DatasetWriter(tmp, task="sudoku", seed=seed, builder={"box": 2, "blanks": blanks})
        ids = writer.add_identifiers([f"p{j}" for j in range(identifiers)]) if identifiers else None
        for name, inputs, labels in [("train", train_in, train_lab), ("test", test_in, test_lab)]:
            split = writer.split(name, seq_len=16, vocab_size=6, pad_id=0, ignore_label_id=0)
            n = len(inputs)
            named = {} if ids is None else {"puzzle_identifiers": ids[np.arange(n) % len(ids)]}
            split.set().append(inputs + 1, labels + 1, examples_per_puzzle=np.ones(n, np.int64),
                               puzzles_per_group=np.ones(n, np.int64), **named)
        writer.close()
    return out
