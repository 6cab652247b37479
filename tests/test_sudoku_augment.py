"""Sudoku shuffles: the stored-descriptor semantics, the numba kernel, and exact inverses."""
from __future__ import annotations

import numpy as np
import pytest

from hrm.augment.sudoku import (augment_pairs, apply_sudoku_transform, canonical_sudoku,
                            draw_transforms, inverse_transforms, invert_sudoku_transform)
from hrm.builders.sudoku_kernels import generate_batch, sudoku_tables
from tests.sudoku_oracle import is_valid_solution, orbit_4x4


def _literal(grid: np.ndarray, transpose: int, row_perm, col_perm, digit_map) -> np.ndarray:
    """A[r, c] = digit_map[T[row_perm[r], col_perm[c]]], T = O.T if transpose else O, by loops."""
    n = len(row_perm)
    original = [[int(grid[i * n + j]) for j in range(n)] for i in range(n)]
    t = [[original[j][i] for j in range(n)] for i in range(n)] if transpose else original
    return np.array([int(digit_map[t[row_perm[r]][col_perm[c]]]) for r in range(n) for c in range(n)])


def random_transforms(seed: int, count: int, box: int):
    return draw_transforms(np.random.SeedSequence(seed).generate_state(count, np.uint64), box)


def _puzzles(box: int, count: int):
    peers, units = sudoku_tables(box)
    seeds = np.arange(1, count + 1, dtype=np.uint64)
    puzzles, solutions, _, _ = generate_batch(seeds, np.zeros(count, np.int64), peers, units, box * box, 0, 0)
    return puzzles, solutions


@pytest.mark.parametrize("box", [2, 3])
def test_random_transforms_are_band_preserving_permutations(box):
    n = box * box
    transpose, row_perm, col_perm, digit_map = random_transforms(0, 500, box)
    assert set(transpose.tolist()) == {0, 1}
    assert len({(t, bytes(r), bytes(c), bytes(d)) for t, r, c, d in zip(transpose, row_perm, col_perm,
                                                                        digit_map)}) > (495 if box == 3 else 420)
    for perm in np.concatenate([row_perm, col_perm]):
        assert sorted(perm.tolist()) == list(range(n))
        for band in range(box):  # rows of one output band all come from one input band
            assert len({int(p) // box for p in perm[band * box:(band + 1) * box]}) == 1
    assert (digit_map[:, 0] == 0).all()
    assert all(sorted(m[1:].tolist()) == list(range(1, n + 1)) for m in digit_map)
    # roughly uniform: every digit lands in every place, every band in every position
    assert (np.bincount(digit_map[:, 1], minlength=n + 1)[1:] > 500 / n / 3).all()
    assert (np.bincount(row_perm[:, 0] // box, minlength=box) > 500 / box / 2).all()
    # a transform depends on its own seed only
    seeds = np.random.SeedSequence(0).generate_state(500, np.uint64)
    again = draw_transforms(seeds[::-1].copy(), box)
    assert all(np.array_equal(a, b[::-1]) for a, b in zip((transpose, row_perm, col_perm, digit_map), again))


@pytest.mark.parametrize("box", [2, 3])
def test_numpy_and_numba_application_follow_the_descriptor_semantics(box):
    n = box * box
    puzzles, solutions = _puzzles(box, 6)
    count = 40
    group = np.random.default_rng(1).integers(0, len(puzzles), count)
    descriptors = random_transforms(2, count, box)
    inputs, labels, hashes = augment_pairs(puzzles, solutions, group, *descriptors)
    batch_in = apply_sudoku_transform(puzzles[group] + 1, *descriptors)  # tokens
    batch_digits = apply_sudoku_transform(solutions[group], *descriptors, tokens=False)
    for v in range(count):
        d = [a[v] for a in descriptors]
        expected_in = _literal(puzzles[group[v]], *d) + 1
        expected_label = _literal(solutions[group[v]], *d) + 1
        assert np.array_equal(inputs[v], expected_in) and np.array_equal(labels[v], expected_label)
        assert np.array_equal(batch_in[v], expected_in)
        assert np.array_equal(batch_digits[v], expected_label - 1)
        # a version is a valid sudoku consistent with its label
        assert is_valid_solution((labels[v] - 1).tolist(), n)
        assert all(i == 1 or i == label for i, label in zip(inputs[v], labels[v]))
    # equal versions hash equally, different ones (here all) differently
    assert len(set(hashes.tolist())) == len({(bytes(a), bytes(b)) for a, b in zip(inputs, labels)})


def test_single_grid_and_grid_shapes():
    puzzles, solutions = _puzzles(3, 1)
    t, rp, cp, dm = (a[0] for a in random_transforms(3, 1, 3))
    grid = solutions[0].reshape(9, 9) + 1
    out = apply_sudoku_transform(grid, t, rp, cp, dm)
    assert out.shape == (9, 9)
    assert np.array_equal(out.reshape(-1), _literal(solutions[0], t, rp, cp, dm) + 1)
    assert np.array_equal(invert_sudoku_transform(out, t, rp, cp, dm), grid)
    # several sequences under one transform
    both = np.stack([puzzles[0] + 1, solutions[0] + 1])
    assert np.array_equal(apply_sudoku_transform(both, t, rp, cp, dm)[1], out.reshape(-1))
    with pytest.raises(ValueError):
        apply_sudoku_transform(np.zeros(80, np.uint8), t, rp, cp, dm)


@pytest.mark.parametrize("box", [2, 3])
def test_inverse_restores_the_original_exactly(box):
    n = box * box
    puzzles, solutions = _puzzles(box, 5)
    count = 200
    group = np.arange(count) % len(puzzles)
    descriptors = random_transforms(4, count, box)
    inputs, labels, _ = augment_pairs(puzzles, solutions, group, *descriptors)
    assert np.array_equal(invert_sudoku_transform(inputs, *descriptors), puzzles[group] + 1)
    assert np.array_equal(invert_sudoku_transform(labels, *descriptors), solutions[group] + 1)
    # the inverse descriptors are themselves valid descriptors, and inverting twice is the identity
    inverse = inverse_transforms(*descriptors)
    assert np.array_equal(apply_sudoku_transform(inputs, *inverse), puzzles[group] + 1)
    twice = inverse_transforms(*inverse)
    for a, b in zip(twice, descriptors):
        assert np.array_equal(a, b)
    # identity descriptors change nothing
    identity = (np.zeros(count, np.uint8), np.tile(np.arange(n, dtype=np.uint8), (count, 1)),
                np.tile(np.arange(n, dtype=np.uint8), (count, 1)), np.tile(np.arange(n + 1, dtype=np.uint8), (count, 1)))
    assert np.array_equal(apply_sudoku_transform(inputs, *identity), inputs)


def test_inverse_on_predictions_keeps_pad_blank_and_unknown_tokens():
    """A prediction = an augmented label with some cells replaced by pad 0, blank 1 or an
    out-of-range token: the inverse is the original label with those same original cells
    replaced by the same tokens (cell (r, c) of A reads T[row_perm[r], col_perm[c]])."""
    puzzles, solutions = _puzzles(3, 3)
    descriptors = random_transforms(5, 3, 3)
    _, labels, _ = augment_pairs(puzzles, solutions, np.arange(3), *descriptors)
    rng = np.random.default_rng(6)
    for v in range(3):
        transpose, row_perm, col_perm, _ = (a[v] for a in descriptors)
        prediction = labels[v].copy()
        expected = solutions[v].astype(np.int64) + 1
        for cell in rng.choice(81, 12, replace=False):
            token = int(rng.choice([0, 1, 12, 200]))
            prediction[cell] = token
            r, c = divmod(int(cell), 9)
            i, j = (col_perm[c], row_perm[r]) if transpose else (row_perm[r], col_perm[c])
            expected[i * 9 + j] = token
        back = invert_sudoku_transform(prediction, *(a[v] for a in descriptors))
        assert np.array_equal(back, expected)


def test_canonical_form_is_equal_exactly_within_an_orbit():
    rng = np.random.default_rng(0)
    puzzles, _ = _puzzles(2, 6)
    # partial grids too: blank some cells of each puzzle at random
    grids = np.concatenate([puzzles, np.where(rng.random(puzzles.shape) < 0.3, 0, puzzles)]).astype(np.int8)
    canonical = canonical_sudoku(grids, 2)
    for grid, form in zip(grids, canonical):
        orbit = orbit_4x4(grid)
        assert form.tobytes() in orbit  # a member of the orbit...
        members = np.frombuffer(b"".join(sorted(orbit)), np.int8).reshape(-1, 16)
        assert (canonical_sudoku(members, 2) == form).all()  # ...shared by every member
        for other, other_form in zip(grids, canonical):  # and by no grid outside the orbit
            assert (other.tobytes() in orbit) == np.array_equal(other_form, form)
    with pytest.raises(ValueError, match="16"):
        canonical_sudoku(grids[:, :9], 2)
