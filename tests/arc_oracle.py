"""Independent checks of a built ARC dataset against the original tasks (plain NumPy, no code
from builders/ or augment/ besides the dataset reader)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from hrm.builders.dataset import open_dataset

# undo dihedral transform d (SPEC 3.4 ids), written out independently of augment.dihedral
INVERSE = {0: lambda g: g, 1: lambda g: np.rot90(g, -1), 2: lambda g: np.rot90(g, 2), 3: lambda g: np.rot90(g, 1),
           4: np.fliplr, 5: np.flipud, 6: lambda g: g.T, 7: lambda g: np.rot90(np.fliplr(g), -1)}
FORWARD = {0: lambda g: g, 1: lambda g: np.rot90(g, 1), 2: lambda g: np.rot90(g, 2), 3: lambda g: np.rot90(g, 3),
           4: np.fliplr, 5: np.flipud, 6: lambda g: g.T, 7: lambda g: np.fliplr(np.rot90(g))}
NAME = re.compile(r"^(.+)_t([0-7])_([0-9]{10})$")


def encode(grid: np.ndarray, row: int = 0, col: int = 0) -> np.ndarray:
    """The uint8[900] canvas of `grid` at (row, col) (SPEC 3): colour c -> c + 2, end markers (1)
    in the row below and the column right of it, each as long as the grid, where they fit."""
    grid = np.asarray(grid)
    height, width = grid.shape
    canvas = np.zeros((30, 30), np.uint8)
    canvas[row:row + height, col:col + width] = grid + 2
    if row + height < 30:
        canvas[row + height, col:col + width] = 1
    if col + width < 30:
        canvas[row:row + height, col + width] = 1
    return canvas.ravel()


def random_colour_map(rng: np.random.Generator) -> np.ndarray:
    """A uint8[10] map keeping colour 0 and permuting 1-9."""
    return np.concatenate([[0], rng.permutation(9) + 1]).astype(np.uint8)


def augment_grid(grid: np.ndarray, transform: int, colour_map: np.ndarray) -> np.ndarray:
    """An augmented version: colours mapped, then dihedral `transform` (SPEC 3.4)."""
    return np.ascontiguousarray(FORWARD[transform](np.asarray(colour_map)[grid]))


def original_grid(grid: np.ndarray, transform: int, colour_map: np.ndarray) -> np.ndarray:
    """Undo `augment_grid`."""
    return np.argsort(colour_map)[INVERSE[transform](np.asarray(grid))]


def version_name(task: str, transform: int, colour_map: np.ndarray) -> str:
    """`<task>_t<id>_<ten digits>` as the reference names versions; the identity keeps `task`."""
    if transform == 0 and list(colour_map) == list(range(10)):
        return task
    return f"{task}_t{transform}_{''.join(str(int(c)) for c in colour_map)}"


def read_tasks_json(folder: Path, prefix: str, subsets: list[str]) -> dict[str, dict]:
    """Tasks of Kaggle files, read with json only: {name: {"train": [(in, out)], "test": [...], "subset"}}."""
    tasks = {}
    for subset in subsets:
        challenges = json.loads((folder / f"{prefix}_{subset}_challenges.json").read_text())
        solutions = json.loads((folder / f"{prefix}_{subset}_solutions.json").read_text())
        for name, task in challenges.items():
            tasks[name] = {"subset": subset,
                           "train": [(np.array(p["input"]), np.array(p["output"])) for p in task["train"]],
                           "test": [(np.array(p["input"]), np.array(solutions[name][k]))
                                    for k, p in enumerate(task["test"])]}
    return tasks


def locate(tokens: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The grid on a canvas and its top-left corner, checking that everything else is exactly
    the end markers (row below, column right, each as long as the grid, where they fit) and pad."""
    canvas = np.asarray(tokens).reshape(30, 30).astype(np.int64)
    colour = canvas >= 2
    rows, cols = np.flatnonzero(colour.any(1)), np.flatnonzero(colour.any(0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    grid = canvas[r0:r1, c0:c1]
    assert (grid >= 2).all() and (grid <= 11).all(), "grid region is not all colour tokens"
    expected = np.zeros((30, 30), np.int64)
    expected[r0:r1, c0:c1] = grid
    if r1 < 30:
        expected[r1, c0:c1] = 1
    if c1 < 30:
        expected[r0:r1, c1] = 1
    assert np.array_equal(canvas, expected), "markers or padding wrong"
    return grid - 2, int(r0), int(c0)


def _decode(grid: np.ndarray, transform: int, colour_map: np.ndarray) -> np.ndarray:
    return np.argsort(colour_map)[INVERSE[transform](grid)]


def check_dataset(path: Path, tasks: dict[str, dict], test_set: str, aug: int) -> dict[str, int]:
    """Every example of every version decodes to its original pair; structure as SPEC 3.3."""
    dataset = open_dataset(path)
    names = dataset.identifiers()
    train, test = dataset.split("train").set(), dataset.split("test").set()
    stats = {"translated": 0, "train_examples": 0, "versions": 0}
    test_groups = {}
    contents: dict[int, list[bytes]] = {}  # identifier -> the version's pairs, both splits
    inputs, labels = train.rows(0, train.num_examples)
    transforms, maps = train.field("aug_dihedral"), train.field("aug_colour_map")
    pi, gi, ids = train.puzzle_indices, train.group_indices, train.puzzle_identifiers
    assert train.num_groups == len(tasks)
    for g in range(train.num_groups):
        task_name = names[ids[gi[g]]]
        task = tasks[task_name]
        expected = task["train"] + (task["test"] if task["subset"] != test_set else [])
        assert transforms[gi[g]] == 0 and np.array_equal(maps[gi[g]], np.arange(10)), "identity first"
        assert 1 <= gi[g + 1] - gi[g] <= aug + 1
        for p in range(gi[g], gi[g + 1]):
            d, m = int(transforms[p]), maps[p]
            name = names[ids[p]]
            if p > gi[g]:
                match = NAME.match(name)
                assert match and match[1] == task_name and int(match[2]) == d
                assert [int(c) for c in match[3]] == m.tolist() and m[0] == 0
            assert sorted(m.tolist()) == list(range(10))
            rows = range(pi[p], pi[p + 1])
            assert len(rows) == len(expected)
            corners, content = [], contents.setdefault(ids[p], [])
            for row, (a, b) in zip(rows, expected):
                grid_in, r_in, c_in = locate(inputs[row])
                grid_out, r_out, c_out = locate(labels[row])
                assert (r_in, c_in) == (r_out, c_out), "input and output share one offset"
                assert np.array_equal(_decode(grid_in, d, m), a) and np.array_equal(_decode(grid_out, d, m), b)
                corners.append((r_in, c_in))
                content.append(bytes([*grid_in.shape, *grid_out.shape]) + grid_in.tobytes() + grid_out.tobytes())
            assert (0, 0) in corners, "one pair per version stays top-left"
            stats["translated"] += sum(c != (0, 0) for c in corners)
        stats["train_examples"] += pi[gi[g + 1]] - pi[gi[g]]
        stats["versions"] += gi[g + 1] - gi[g]
        if task["subset"] == test_set:
            test_groups[task_name] = ids[gi[g]:gi[g + 1]]
    # test split: the test-set tasks, same versions and identifiers, never translated
    inputs, labels = test.rows(0, test.num_examples)
    transforms, maps = test.field("aug_dihedral"), test.field("aug_colour_map")
    pi, gi, ids = test.puzzle_indices, test.group_indices, test.puzzle_identifiers
    assert test.num_groups == len(test_groups) == sum(t["subset"] == test_set for t in tasks.values())
    for g in range(test.num_groups):
        task_name = names[ids[gi[g]]]
        assert np.array_equal(ids[gi[g]:gi[g + 1]], test_groups[task_name]), "same identifiers in both splits"
        for p in range(gi[g], gi[g + 1]):
            rows = range(pi[p], pi[p + 1])
            assert len(rows) == len(tasks[task_name]["test"])
            for row, (a, b) in zip(rows, tasks[task_name]["test"]):
                grid_in, r_in, c_in = locate(inputs[row])
                grid_out, r_out, c_out = locate(labels[row])
                assert (r_in, c_in, r_out, c_out) == (0, 0, 0, 0), "test examples are never translated"
                assert np.array_equal(_decode(grid_in, int(transforms[p]), maps[p]), a)
                assert np.array_equal(_decode(grid_out, int(transforms[p]), maps[p]), b)
                contents[ids[p]].append(bytes([*grid_in.shape, *grid_out.shape]) + grid_in.tobytes()
                                        + grid_out.tobytes())
    # versions of a task differ as whole tasks (both splits; pair order ignored, as the reference)
    train_gi, train_ids = train.group_indices, train.puzzle_identifiers
    for g in range(train.num_groups):
        versions = {tuple(sorted(contents[i])) for i in train_ids[train_gi[g]:train_gi[g + 1]]}
        assert len(versions) == train_gi[g + 1] - train_gi[g], "versions of a task are distinct"
    return stats
