"""Maze-Hard builder: every label checked by a plain-Python BFS written here, shortest-path counts
by brute-force enumeration, dihedral versions inverted, kernels against Python references."""
from __future__ import annotations

import json
from collections import deque
from pathlib import Path

import numba
import numpy as np
import pytest

from hrm.augment import maze_paths
from hrm.augment.dihedral import inverse_dihedral
from hrm.builders import maze_kernels as kernels
from hrm.common import HrmError
from hrm.builders.dataset import open_dataset
from hrm.builders.maze import build_maze, generate_mazes, stream_base
from tests.conftest import assert_one_line_error, run_hrm

CHARS = "# SGo"  # token t (1..5) is CHARS[t - 1]
WALL, OPEN, START, GOAL, PATH = 1, 2, 3, 4, 5
STEPS = ((-1, 0), (1, 0), (0, -1), (0, 1))


# ----------------------------------------------------------------------------- Python oracles


def py_bfs(open_grid: np.ndarray, source: tuple[int, int]) -> dict[tuple[int, int], int]:
    """Distances from `source` over True cells of a 2-D bool grid (unreached cells absent)."""
    rows, cols = open_grid.shape
    dist = {source: 0}
    queue = deque([source])
    while queue:
        r, c = queue.popleft()
        for dr, dc in STEPS:
            nr, nc = r + dr, c + dc
            if 0 <= nr < rows and 0 <= nc < cols and open_grid[nr, nc] and (nr, nc) not in dist:
                dist[(nr, nc)] = dist[(r, c)] + 1
                queue.append((nr, nc))
    return dist


def brute_force_count(open_grid: np.ndarray, start, goal, length: int, budget: int = 200_000) -> int | None:
    """Enumerate every simple S->G path of exactly `length` moves by DFS (pruned only by the
    Manhattan distance); None if more than `budget` nodes would be visited."""
    rows, cols = open_grid.shape
    visited = {start}
    count = 0
    nodes = 0

    def dfs(cell, moves_left):
        nonlocal count, nodes
        nodes += 1
        if nodes > budget:
            raise OverflowError
        if cell == goal:
            count += moves_left == 0
            return
        if abs(cell[0] - goal[0]) + abs(cell[1] - goal[1]) > moves_left:
            return
        for dr, dc in STEPS:
            nxt = (cell[0] + dr, cell[1] + dc)
            if 0 <= nxt[0] < rows and 0 <= nxt[1] < cols and open_grid[nxt] and nxt not in visited:
                visited.add(nxt)
                dfs(nxt, moves_left - 1)
                visited.discard(nxt)

    try:
        dfs(start, length)
    except OverflowError:
        return None
    return count


def check_maze(inputs: np.ndarray, labels: np.ndarray, min_path: int) -> int:
    """Assert the label marks one shortest S->G path of >= min_path moves; return its length."""
    assert set(np.unique(inputs)) <= {WALL, OPEN, START, GOAL}
    assert (inputs == START).sum() == 1 and (inputs == GOAL).sum() == 1
    assert np.array_equal(labels == WALL, inputs == WALL), "walls changed"
    changed = labels != inputs
    assert np.all(labels[changed] == PATH) and np.all(inputs[changed] == OPEN)
    start = tuple(np.argwhere(inputs == START)[0])
    goal = tuple(np.argwhere(inputs == GOAL)[0])
    shortest = py_bfs(inputs != WALL, start)[goal]
    marked = (labels == PATH) | (labels == START) | (labels == GOAL)
    assert marked.sum() == shortest + 1, "marked path is not a shortest path"
    along = py_bfs(marked, start)
    assert along.get(goal) == shortest, "marked cells do not connect S to G"
    assert shortest >= min_path
    return shortest


def grids(puzzle_set, side: int) -> tuple[np.ndarray, np.ndarray]:
    inputs, labels = puzzle_set.rows(0, puzzle_set.num_examples)
    return inputs.reshape(-1, side, side), labels.reshape(-1, side, side)


# ----------------------------------------------------------------------------- builds


@pytest.fixture(scope="module")
def small_build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("maze") / "small"
    build_maze(out, size=10, train_size=80, test_size=40, min_path=15, aug=7, seed=3)
    return out


def test_every_label_is_a_shortest_path_and_counts_match_brute_force(small_build):
    dataset = open_dataset(small_build)
    assert dataset.task == "maze" and dataset.num_identifiers == 1
    counted = ambiguous = 0
    for split, groups in (("train", 80), ("test", 40)):
        attrs = dataset.split(split).attrs
        assert (attrs["seq_len"], attrs["vocab_size"], attrs["pad_id"], attrs["ignore_label_id"]) == (100, 6, 0, 0)
        puzzle_set = dataset.split(split).set("all")
        assert puzzle_set.num_groups == groups
        inputs, labels = grids(puzzle_set, 10)
        assert np.all(puzzle_set.puzzle_identifiers == 0)
        lengths = puzzle_set.field("path_length", "group")
        counts = puzzle_set.field("num_shortest_paths", "group")
        for group in range(groups):
            first = puzzle_set.group_indices[group]
            row = puzzle_set.puzzle_indices[first]
            for r in range(row, puzzle_set.puzzle_indices[puzzle_set.group_indices[group + 1]]):
                assert check_maze(inputs[r], labels[r], 15) == lengths[group]
            open_grid = inputs[row] != WALL
            start = tuple(np.argwhere(inputs[row] == START)[0])
            goal = tuple(np.argwhere(inputs[row] == GOAL)[0])
            brute = brute_force_count(open_grid, start, goal, int(lengths[group]))
            if brute is not None:
                assert counts[group] == brute
                counted += 1
                ambiguous += brute > 1
    assert counted >= 60 and ambiguous >= 10


def test_dihedral_versions_invert_to_the_original(small_build):
    puzzle_set = open_dataset(small_build).split("train").set("all")
    inputs, labels = grids(puzzle_set, 10)
    aug = puzzle_set.field("aug_dihedral")
    assert aug.dtype == np.uint8
    for group in range(puzzle_set.num_groups):
        puzzles = range(puzzle_set.group_indices[group], puzzle_set.group_indices[group + 1])
        assert aug[puzzles.start] == 0 and len(set(aug[list(puzzles)])) == len(puzzles) == 8
        original = puzzle_set.puzzle_indices[puzzles.start]
        for p in puzzles:
            row = puzzle_set.puzzle_indices[p]
            assert puzzle_set.puzzle_indices[p + 1] == row + 1
            assert np.array_equal(inverse_dihedral(inputs[row], int(aug[p])), inputs[original])
            assert np.array_equal(inverse_dihedral(labels[row], int(aug[p])), labels[original])
    test_set = open_dataset(small_build).split("test").set("all")
    assert np.all(test_set.field("aug_dihedral") == 0) and test_set.num_puzzles == test_set.num_groups


# SPEC 3.4's numbering, written out by hand for the 2x3 grid [[1, 2, 3], [4, 5, 6]].
HAND_DIHEDRAL = {0: [[1, 2, 3], [4, 5, 6]], 1: [[3, 6], [2, 5], [1, 4]], 2: [[6, 5, 4], [3, 2, 1]],
                 3: [[4, 1], [5, 2], [6, 3]], 4: [[3, 2, 1], [6, 5, 4]], 5: [[4, 5, 6], [1, 2, 3]],
                 6: [[1, 4], [2, 5], [3, 6]], 7: [[6, 3], [5, 2], [4, 1]]}
# ... and as numpy calls (np.rot90 with k = 1, 2, 3; flips; transpose; lr flip of rot90).
SPEC_DIHEDRAL = {0: lambda g: g, 1: lambda g: np.rot90(g, 1), 2: lambda g: np.rot90(g, 2),
                 3: lambda g: np.rot90(g, 3), 4: np.fliplr, 5: np.flipud, 6: lambda g: g.T,
                 7: lambda g: np.fliplr(np.rot90(g, 1))}


def test_dihedral_numbering_matches_hand_made_grids():
    from hrm.augment.dihedral import dihedral
    from hrm.augment.dihedral_kernels import transform_grid
    from hrm.builders.maze import dihedral_versions

    grid = np.array(HAND_DIHEDRAL[0])
    square = np.arange(1, 10).reshape(3, 3)  # the maze builder transforms square grids
    out = np.empty(6, np.uint8)
    for t, expected in HAND_DIHEDRAL.items():
        expected = np.array(expected)
        assert np.array_equal(SPEC_DIHEDRAL[t](grid), expected), t  # the oracle agrees with itself
        assert np.array_equal(dihedral(grid, t), expected), t
        h, w = transform_grid(grid.astype(np.uint8).ravel(), 0, 2, 3, t, np.arange(10, dtype=np.uint8), out)
        assert np.array_equal(out[:h * w].reshape(h, w), expected), t
        version = dihedral_versions(square.reshape(1, 9), 3, [t])[0, 0].reshape(3, 3)
        assert np.array_equal(version, SPEC_DIHEDRAL[t](square)), t


def test_stored_maze_versions_are_the_spec_transforms_of_the_original(small_build):
    """Each version's aug_dihedral id names the transform that made it (SPEC 3.4, numpy calls)."""
    puzzle_set = open_dataset(small_build).split("train").set("all")
    inputs, labels = grids(puzzle_set, 10)
    aug = puzzle_set.field("aug_dihedral")
    for group in range(puzzle_set.num_groups):
        puzzles = range(puzzle_set.group_indices[group], puzzle_set.group_indices[group + 1])
        original = puzzle_set.puzzle_indices[puzzles.start]
        for p in puzzles:
            row, transform = puzzle_set.puzzle_indices[p], SPEC_DIHEDRAL[int(aug[p])]
            assert np.array_equal(inputs[row], transform(inputs[original])), (group, int(aug[p]))
            assert np.array_equal(labels[row], transform(labels[original])), (group, int(aug[p]))


def test_no_maze_repeats_across_splits_up_to_symmetry(small_build):
    dataset = open_dataset(small_build)
    keys = []
    for split in ("train", "test"):
        puzzle_set = dataset.split(split).set("all")
        inputs, _ = grids(puzzle_set, 10)
        for row in puzzle_set.puzzle_indices[puzzle_set.group_indices[:-1]]:
            grid = inputs[row]
            versions = [np.rot90(g, k) for g in (grid, grid.T) for k in range(4)]
            keys.append(min(v.tobytes() for v in versions))
    assert len(set(keys)) == len(keys)


def test_unique_path_gives_single_shortest_paths(tmp_path):
    build_maze(tmp_path / "u", size=10, train_size=30, test_size=10, min_path=15, unique_path=True, seed=1)
    dataset = open_dataset(tmp_path / "u")
    for split in ("train", "test"):
        puzzle_set = dataset.split(split).set("all")
        inputs, labels = grids(puzzle_set, 10)
        assert np.all(puzzle_set.field("num_shortest_paths", "group") == 1)
        for row in range(len(inputs)):
            length = check_maze(inputs[row], labels[row], 15)
            start = tuple(np.argwhere(inputs[row] == START)[0])
            goal = tuple(np.argwhere(inputs[row] == GOAL)[0])
            assert brute_force_count(inputs[row] != WALL, start, goal, length) == 1


def test_default_size_build(tmp_path):
    summary = build_maze(tmp_path / "d", train_size=12, test_size=6, aug=7, test_aug=7, seed=0)
    assert summary["splits"]["train"]["examples"] == 96
    dataset = open_dataset(tmp_path / "d")
    for split in ("train", "test"):
        puzzle_set = dataset.split(split).set("all")
        assert dataset.split(split).seq_len == 900
        inputs, labels = grids(puzzle_set, 30)
        for row in range(len(inputs)):
            check_maze(inputs[row], labels[row], 110)


def test_same_seed_same_bytes_and_threads_do_not_matter(tmp_path):
    args = dict(size=8, train_size=25, test_size=5, min_path=10, aug=7)
    build_maze(tmp_path / "a", seed=7, **args)
    build_maze(tmp_path / "b", seed=7, **args)
    build_maze(tmp_path / "c", seed=8, **args)
    a, b, c = (open_dataset(tmp_path / name).split("train").set("all") for name in "abc")
    assert np.array_equal(a.inputs[:], b.inputs[:]) and np.array_equal(a.labels[:], b.labels[:])
    assert not np.array_equal(a.inputs[:], c.inputs[:])

    def batch(threads: int, first: int, n: int):
        out = (np.empty((n, 144), np.uint8), np.empty((n, 144), np.uint8), np.empty(n, np.int32), np.empty(n, np.int32))
        previous = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            kernels.generate_batch(stream_base(5, 0), first, 12, 20, 0.25, False, *out)
        finally:
            numba.set_num_threads(previous)
        return out

    one, two = batch(1, 0, 40), batch(numba.config.NUMBA_NUM_THREADS, 0, 40)
    shifted = batch(1, 10, 30)  # maze i depends on its index only, not on the batch it is in
    for x, y, z in zip(one, two, shifted):
        assert np.array_equal(x, y) and np.array_equal(x[10:], z)


def test_generate_mazes_rejects_infeasible_min_path():
    with pytest.raises(HrmError, match="could not generate"):
        list(generate_mazes(5, size=5, min_path=20, seed=0, stream=0))


# ----------------------------------------------------------------------------- kernels vs Python


def _random_open(rng, side: int, density: float) -> np.ndarray:
    return (rng.random((side, side)) >= density).astype(np.uint8)


def test_bfs_and_counts_match_python():
    rng = np.random.default_rng(0)
    side = 7
    dist = np.empty(side * side, np.int32)
    order = np.empty(side * side, np.int32)
    path = np.empty(side * side, np.int64)
    checked_counts = 0
    for trial in range(60):
        open_grid = _random_open(rng, side, 0.3)
        cells = np.argwhere(open_grid)
        if len(cells) < 2:
            continue
        source = tuple(cells[rng.integers(len(cells))])
        reached = maze_paths.bfs(open_grid.ravel(), side, source[0] * side + source[1], dist, order)
        expected = py_bfs(open_grid.astype(bool), source)
        assert reached == len(expected)
        want = np.full((side, side), -1)
        for (r, c), d in expected.items():
            want[r, c] = d
        assert np.array_equal(dist.reshape(side, side), want)
        assert np.all(np.diff(dist[order[:reached]]) >= 0)
        for target, d in list(expected.items())[-3:]:
            flat = target[0] * side + target[1]
            count = maze_paths.count_shortest_paths(side, dist, order, reached, flat)
            assert count == brute_force_count(open_grid.astype(bool), source, target, d)
            checked_counts += count > 1
            state = np.array([trial], np.uint64)
            assert kernels.extract_path(side, dist, flat, state, path) == d
            cells_on_path = [divmod(int(cell), side) for cell in path[:d + 1]]
            assert cells_on_path[0] == target and cells_on_path[-1] == source
            for (r1, c1), (r2, c2) in zip(cells_on_path, cells_on_path[1:]):
                assert abs(r1 - r2) + abs(c1 - c2) == 1 and open_grid[r2, c2]
    assert checked_counts > 10


def test_count_saturates_at_cap():
    side = 30
    open_cells = np.ones(side * side, np.uint8)
    dist, order = np.empty(side * side, np.int32), np.empty(side * side, np.int32)
    reached = maze_paths.bfs(open_cells, side, 0, dist, order)
    # corner to corner of an open 30x30 grid: C(58, 29) ~ 3e16 paths
    assert maze_paths.count_shortest_paths(side, dist, order, reached, side * side - 1) == maze_paths.COUNT_CAP
    assert maze_paths.count_shortest_paths(side, dist, order, reached, 2 * side + 3) == 10  # C(5, 2)


def test_generated_maze_matches_python_checks():
    inputs = np.empty(144, np.uint8)
    labels = np.empty(144, np.uint8)
    for seed in range(20):
        length, count = kernels.generate_maze(np.uint64(seed), 12, 20, 0.25, False, inputs, labels)
        assert check_maze(inputs.reshape(12, 12), labels.reshape(12, 12), 20) == length
        start = tuple(np.argwhere(inputs.reshape(12, 12) == START)[0])
        goal = tuple(np.argwhere(inputs.reshape(12, 12) == GOAL)[0])
        brute = brute_force_count(inputs.reshape(12, 12) != WALL, start, goal, length, budget=10**6)
        assert brute is None or brute == count


# ----------------------------------------------------------------------------- CSV import and CLI

# 4x4 maze with a wall block in the middle: 6 moves from S to G.
MAZE = "S   " " ## " "    " "   G"
ANSWER = "Sooo" " ##o" "   o" "   G"
DETOUR = "Sooo" " ##o" "  oo" "  oG"  # connected, but 8 moves
TWO_S = "S  S" " ## " "    " "   G"
WALLS_MOVED = "Sooo" " #oo" "   o" "   G"
BROKEN = "Soo " " ##o" "   o" "   G"


def write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("source,question,answer,rating\n" + "".join(f"test,{q},{a},0\n" for q, a in rows))


def tokens(text: str) -> np.ndarray:
    return np.array([CHARS.index(ch) + 1 for ch in text], np.uint8)


def test_csv_import_round_trip(tmp_path):
    write_csv(tmp_path / "csv" / "train.csv", [(MAZE, ANSWER), (MAZE, "S   " "o## " "o   " "oooG")])
    write_csv(tmp_path / "csv" / "test.csv", [(MAZE, "S   " "o## " "oooo" "   G")])
    result = run_hrm("build-data", "maze", "--out", tmp_path / "out", "--size", "4", "--from-csv",
                     tmp_path / "csv", "--test-aug", "7", "--json", check=True)
    summary = json.loads(result.stdout)
    assert summary["splits"]["train"]["mazes"] == 2 and summary["splits"]["test"]["examples"] == 8
    dataset = open_dataset(tmp_path / "out")
    train = dataset.split("train").set("all")
    assert np.array_equal(train.inputs[0], tokens(MAZE)) and np.array_equal(train.labels[0], tokens(ANSWER))
    assert list(train.field("path_length", "group")) == [6, 6]
    # brute force: the shortest paths of MAZE
    count = brute_force_count(tokens(MAZE).reshape(4, 4) != WALL, (0, 0), (3, 3), 6)
    assert list(train.field("num_shortest_paths", "group")) == [count, count]


@pytest.mark.parametrize("answer,question,fragment", [
    (DETOUR, MAZE, "not a shortest path (8 moves marked, shortest is 6)"),
    (ANSWER, TWO_S, "2 S cells"),
    (WALLS_MOVED, MAZE, "changes the walls"),
    (BROKEN, MAZE, "do not connect S to G"),
])
def test_csv_bad_rows_name_the_line(tmp_path, answer, question, fragment):
    write_csv(tmp_path / "csv" / "train.csv", [(MAZE, ANSWER), (question, answer), (MAZE, ANSWER)])
    write_csv(tmp_path / "csv" / "test.csv", [(MAZE, ANSWER)])
    with pytest.raises(HrmError) as error:
        build_maze(tmp_path / "out", size=4, from_csv=tmp_path / "csv")
    assert "train.csv:3" in str(error.value) and fragment in str(error.value)
    assert not (tmp_path / "out").exists()
    summary = build_maze(tmp_path / "out", size=4, from_csv=tmp_path / "csv", skip_invalid=True)
    assert summary["splits"]["train"]["mazes"] == 2


def test_cli_bad_csv_is_one_line(tmp_path):
    write_csv(tmp_path / "csv" / "train.csv", [(MAZE, ANSWER), (MAZE, DETOUR)])
    write_csv(tmp_path / "csv" / "test.csv", [(MAZE, ANSWER)])
    result = run_hrm("build-data", "maze", "--out", tmp_path / "out", "--size", "4", "--from-csv", tmp_path / "csv")
    assert_one_line_error(result, "train.csv:3", "not a shortest path")
    assert not (tmp_path / "out").exists()


def test_cli_build_and_existing_output(tmp_path):
    args = ["build-data", "maze", "--out", tmp_path / "m", "--size", "8", "--min-path", "10",
            "--train-size", "10", "--test-size", "5", "--json"]
    summary = json.loads(run_hrm(*args, check=True).stdout)
    assert summary["splits"]["train"]["mazes"] == 10 and summary["splits"]["test"]["path_length"]["min"] >= 10
    assert_one_line_error(run_hrm(*args), "already exists", "--force")
    assert_one_line_error(run_hrm("build-data", "maze", "--out", tmp_path / "x", "--size", "1"), "--size")
    with pytest.raises(HrmError, match="--min-path"):
        build_maze(tmp_path / "x", size=5, min_path=30)
    build_maze(tmp_path / "m", size=8, min_path=10, train_size=3, test_size=2, force=True)
    assert open_dataset(tmp_path / "m").split("train").set("all").num_groups == 3
    inspect = run_hrm("inspect", tmp_path / "m", check=True).stdout
    assert "path_length" in inspect and "num_shortest_paths" in inspect
    rendered = inspect[inspect.index("input"):].split("\n", 1)[1]  # input and label side by side
    assert rendered.count("S") == 2 and rendered.count("G") == 2 and rendered.count("o") >= 9


def test_csv_missing_files(tmp_path):
    with pytest.raises(HrmError, match="not a directory"):
        build_maze(tmp_path / "out", size=4, from_csv=tmp_path / "nowhere")
    write_csv(tmp_path / "csv" / "train.csv", [(MAZE, ANSWER)])
    with pytest.raises(HrmError, match="test.csv does not exist"):
        build_maze(tmp_path / "out", size=4, from_csv=tmp_path / "csv")
    assert not (tmp_path / "out").exists()


def test_inspect_histogram_of_wide_counts_uses_geometric_bins():
    from hrm.builders.inspect import histogram

    values = np.array([1, 1, 3, 70, 5000, 2**20, 2**30])
    bins = histogram(values)
    assert len(bins) <= 10 and sum(b["count"] for b in bins) == len(values)
    assert bins[0]["from"] == 1 and bins[-1]["to"] == 2**30
    assert all(a["to"] + 1 == b["from"] for a, b in zip(bins, bins[1:]))
    for b in bins:  # each value falls in the bin that claims it
        assert b["count"] == int(((values >= b["from"]) & (values <= b["to"])).sum())
    assert bins[0]["to"] < 70  # geometric: the small counts are not lumped with 70 and beyond
