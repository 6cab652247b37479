"""ARC numba kernels and canvas encoding against NumPy references and hand-made examples."""
from __future__ import annotations

import numpy as np
import pytest

from hrm.augment.arc import arc_grid_from_tokens, parse_version_name
from hrm.augment.dihedral import dihedral
from hrm.augment.dihedral_kernels import transform_grid
from hrm.builders.arc_kernels import encode_versions, pack_grids, pair_tables, version_hashes
from tests.arc_oracle import augment_grid, encode, original_grid, random_colour_map, version_name


def test_canvas_by_hand():
    tokens = encode(np.array([[0, 1, 2], [3, 4, 5]]), row=1, col=2).reshape(30, 30)
    assert tokens[1, 2:5].tolist() == [2, 3, 4] and tokens[2, 2:5].tolist() == [5, 6, 7]
    assert tokens[3, 2:5].tolist() == [1, 1, 1]  # marker row below, as wide as the grid
    assert tokens[1:3, 5].tolist() == [1, 1]  # marker column right, as tall as the grid
    assert tokens[3, 5] == 0 and tokens.sum() == 2 + 3 + 4 + 5 + 6 + 7 + 5
    # a 30-wide grid has no marker column, a 30-tall one no marker row
    wide = encode(np.zeros((2, 30), int)).reshape(30, 30)
    assert (wide[:2] == 2).all() and (wide[2] == 1).all() and wide[3:].sum() == 0
    tall = encode(np.ones((30, 1), int)).reshape(30, 30)
    assert (tall[:, 0] == 3).all() and (tall[:, 1] == 1).all() and tall[:, 2:].sum() == 0


def test_crop_inverts_encode_at_top_left():
    rng = np.random.default_rng(1)
    for _ in range(200):
        grid = rng.integers(0, 10, size=rng.integers(1, 31, size=2))
        assert np.array_equal(arc_grid_from_tokens(encode(grid)), grid)


def test_transform_kernel_matches_numpy_dihedral():
    rng = np.random.default_rng(2)
    out = np.empty(900, np.uint8)
    for _ in range(100):
        grid = rng.integers(0, 10, size=rng.integers(1, 31, size=2)).astype(np.uint8)
        cells, starts, heights, widths = pack_grids([grid])
        colour_map = random_colour_map(rng)
        for transform in range(8):
            h, w = transform_grid(cells, starts[0], heights[0], widths[0], transform, colour_map, out)
            expected = dihedral(colour_map[grid], transform)
            assert (h, w) == expected.shape and np.array_equal(out[:h * w].reshape(h, w), expected)


def test_encode_kernel_matches_numpy_reference():
    rng = np.random.default_rng(3)
    pairs = [(rng.integers(0, 10, size=rng.integers(1, 12, size=2)).astype(np.uint8),
              rng.integers(0, 10, size=rng.integers(1, 12, size=2)).astype(np.uint8)) for _ in range(4)]
    cells, starts, heights, widths = pack_grids([g for pair in pairs for g in pair])
    versions = 16
    transforms = rng.integers(0, 8, versions).astype(np.uint8)
    maps = np.stack([random_colour_map(rng) for _ in range(versions)])
    rows = rng.integers(0, 19, size=(versions, 4))
    cols = rng.integers(0, 19, size=(versions, 4))
    inputs = np.full((versions * 4, 900), 99, np.uint8)
    labels = np.full_like(inputs, 99)
    encode_versions(cells, starts, heights, widths, np.arange(4) * 2, np.arange(4) * 2 + 1, transforms, maps,
                    rows, cols, inputs, labels)
    for v in range(versions):
        for e, (a, b) in enumerate(pairs):
            expected_in = encode(augment_grid(a, transforms[v], maps[v]), rows[v, e], cols[v, e])
            expected_out = encode(augment_grid(b, transforms[v], maps[v]), rows[v, e], cols[v, e])
            assert np.array_equal(inputs[v * 4 + e], expected_in) and np.array_equal(labels[v * 4 + e], expected_out)


def _content(pairs, transform, colour_map):
    """Reference: the multiset of a version's pairs, as sorted bytes."""
    out = []
    for a, b in pairs:
        x, y = augment_grid(a, transform, colour_map), augment_grid(b, transform, colour_map)
        out.append(bytes([*x.shape, *y.shape]) + x.tobytes() + y.tobytes())
    return tuple(sorted(out))


@pytest.mark.parametrize("symmetric", [False, True])
def test_version_hash_equal_exactly_when_contents_equal(symmetric):
    rng = np.random.default_rng(4)
    if symmetric:  # symmetric grids with two colours: many candidates give the same content
        base = np.array([[1, 0, 1], [0, 2, 0], [1, 0, 1]], np.uint8)
        pairs = [(base, base.T.copy()), (base[:1], base[:1])]
    else:
        pairs = [(rng.integers(0, 4, (3, 2)).astype(np.uint8), rng.integers(0, 4, (2, 2)).astype(np.uint8)),
                 (rng.integers(0, 4, (1, 3)).astype(np.uint8), rng.integers(0, 4, (3, 3)).astype(np.uint8))]
    cells, starts, heights, widths = pack_grids([g for pair in pairs for g in pair])
    tables, shapes = pair_tables(cells, starts, heights, widths)
    transforms = rng.integers(0, 8, 300).astype(np.uint8)
    maps = np.stack([random_colour_map(rng) for _ in range(300)])
    maps[:, 4:] = np.arange(4, 10)  # colours 4-9 are absent: vary only the used ones, to get collisions
    maps[:, 1:4] = np.stack([rng.permutation([1, 2, 3]) for _ in range(300)])
    hashes = version_hashes(tables, shapes, transforms, maps)
    contents = [_content(pairs, t, m) for t, m in zip(transforms, maps)]
    equal_hash = (hashes[:, None, :] == hashes[None, :, :]).all(-1)
    equal_content = np.array([[a == b for b in contents] for a in contents])
    assert np.array_equal(equal_hash, equal_content)
    assert equal_content.sum() > 300  # the test sees both equal and different contents


def test_hash_ignores_pair_order():
    rng = np.random.default_rng(5)
    pairs = [(rng.integers(0, 10, (2, 3)).astype(np.uint8), rng.integers(0, 10, (3, 1)).astype(np.uint8))
             for _ in range(3)]
    hashes = []
    for order in ([0, 1, 2], [2, 0, 1]):
        cells, starts, heights, widths = pack_grids([g for k in order for g in pairs[k]])
        tables, shapes = pair_tables(cells, starts, heights, widths)
        hashes.append(version_hashes(tables, shapes, np.array([3], np.uint8), random_colour_map(np.random.default_rng(0))[None]))
    assert np.array_equal(hashes[0], hashes[1])


def test_version_names_round_trip():
    colour_map = np.array([0, 3, 1, 2, 9, 8, 7, 6, 5, 4], np.uint8)
    assert version_name("007bbfcf", 5, colour_map) == "007bbfcf_t5_0312987654"
    task, transform, parsed = parse_version_name("007bbfcf_t5_0312987654")
    assert (task, transform) == ("007bbfcf", 5) and np.array_equal(parsed, colour_map)
    assert version_name("abc", 0, np.arange(10)) == "abc"
    task, transform, parsed = parse_version_name("abc")
    assert (task, transform) == ("abc", 0) and np.array_equal(parsed, np.arange(10))
    grid = np.arange(6).reshape(2, 3) % 10
    assert np.array_equal(original_grid(augment_grid(grid, 7, colour_map), 7, colour_map), grid)
