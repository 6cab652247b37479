"""Sudoku builds checked by independent oracles: brute-force uniqueness and labels, valid
versions, exact inverses, no duplicates, seeded determinism, CSV import and its validation."""
from __future__ import annotations

import numpy as np
import pytest

from hrm.augment.sudoku import invert_sudoku_transform
from hrm.common import HrmError
from hrm.builders.dataset import open_dataset
from hrm.builders.sudoku import build_sudoku, generate_puzzles
from hrm.builders.sudoku_kernels import generate_batch, sudoku_tables
from tests.sudoku_oracle import count_solutions, is_valid_solution, orbit_4x4, rate_reference

DESCRIPTORS = ("aug_transpose", "aug_row_perm", "aug_col_perm", "aug_digit_map")


def _check_split(path, split_name: str, box: int, versions: int, *, check_rating: bool = True) -> None:
    n = box * box
    split = open_dataset(path).split(split_name)
    assert (split.seq_len, split.vocab_size) == (n * n, n + 2)
    assert split.attrs["ignore_label_id"] == 0 and split.attrs["num_puzzle_identifiers"] == 1
    data = split.set("all")
    inputs, labels = data.rows(0, data.num_examples)
    assert np.array_equal(data.puzzle_indices, np.arange(data.num_puzzles + 1))  # one example each
    assert (data.puzzle_identifiers == 0).all()
    fields = [data.field(name) for name in DESCRIPTORS]
    ratings = data.field("rating", "group")
    for g in range(data.num_groups):
        first, stop = data.group_indices[g], data.group_indices[g + 1]
        assert stop - first == versions
        puzzle, label = (inputs[first] - 1).tolist(), (labels[first] - 1).tolist()
        # the original (identity descriptors first) has exactly one solution: its label
        assert fields[0][first] == 0 and (fields[3][first] == np.arange(n + 1)).all()
        assert count_solutions(puzzle, n) == (1, label)
        if check_rating:
            assert rate_reference(puzzle, n) == (1, ratings[g])
        pairs = set()
        for p in range(first, stop):
            version_label = (labels[p] - 1).tolist()
            assert is_valid_solution(version_label, n)
            assert all(i in (1, l) for i, l in zip(inputs[p], labels[p]))
            descriptor = [f[p] for f in fields]
            assert np.array_equal(invert_sudoku_transform(inputs[p], *descriptor), inputs[first])
            assert np.array_equal(invert_sudoku_transform(labels[p], *descriptor), labels[first])
            pairs.add((inputs[p].tobytes(), labels[p].tobytes()))
        assert len(pairs) == versions  # no version written twice


def test_box2_build_is_unique_labelled_augmented_and_invertible(tmp_path):
    summary = build_sudoku(tmp_path / "d", train_size=25, test_size=8, aug=30, test_aug=3, box=2, seed=4)
    assert summary["splits"]["train"]["examples"] == 25 * 31
    _check_split(tmp_path / "d", "train", 2, 31)
    _check_split(tmp_path / "d", "test", 2, 4)


def test_box3_build_small_budget(tmp_path):
    build_sudoku(tmp_path / "d", train_size=3, test_size=2, aug=6, test_aug=0, box=3, seed=2,
                 search_steps=3)
    _check_split(tmp_path / "d", "train", 3, 7)
    _check_split(tmp_path / "d", "test", 3, 1)


def _arrays(path) -> dict[str, np.ndarray]:
    dataset = open_dataset(path)
    out = {}
    for split_name in dataset.split_names:
        data = dataset.split(split_name).set("all")
        out[f"{split_name}/inputs"], out[f"{split_name}/labels"] = data.rows(0, data.num_examples)
        for kind in ("puzzle", "group"):
            for name in data.field_names(kind):
                out[f"{split_name}/{kind}/{name}"] = data.field(name, kind)
        out[f"{split_name}/group_indices"] = data.group_indices
    return out


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    args = dict(train_size=12, test_size=4, aug=9, test_aug=2, box=3, search_steps=2)
    build_sudoku(tmp_path / "a", seed=5, **args)
    build_sudoku(tmp_path / "b", seed=5, **args)
    build_sudoku(tmp_path / "c", seed=6, **args)
    a, b, c = _arrays(tmp_path / "a"), _arrays(tmp_path / "b"), _arrays(tmp_path / "c")
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["train/inputs"], c["train/inputs"])
    assert not np.array_equal(a["test/inputs"], c["test/inputs"])


def test_4x4_versions_cap_at_what_exists_without_duplicates(tmp_path):
    # 4! digit maps x 2 transposes x 8 row orders x 8 column orders = 3072 transforms at most
    summary = build_sudoku(tmp_path / "d", train_size=2, test_size=1, aug=3500, box=2, seed=1)
    train = summary["splits"]["train"]
    assert train["short_groups"] == 2 and train["puzzles"] <= 2 * 3072
    data = open_dataset(tmp_path / "d").split("train").set("all")
    inputs, labels = data.rows(0, data.num_examples)
    for g in range(2):
        rows = slice(data.group_indices[g], data.group_indices[g + 1])
        both = np.concatenate([inputs[rows], labels[rows]], axis=1)
        assert len(np.unique(both, axis=0)) == len(both) > 1000


def test_min_difficulty_is_respected(tmp_path):
    summary = build_sudoku(tmp_path / "d", train_size=4, test_size=2, aug=0, box=3, seed=3,
                           search_steps=0, min_difficulty=5)
    for split in ("train", "test"):
        ratings = open_dataset(tmp_path / "d").split(split).set("all").field("rating", "group")
        assert (ratings >= 5).all()
        assert summary["splits"][split]["rating_min"] >= 5


def _original_puzzles(path, split_name: str) -> np.ndarray:
    """The first version (the original) of every group, as digits (0 = blank)."""
    data = open_dataset(path).split(split_name).set("all")
    inputs, _ = data.rows(0, data.num_examples)
    return inputs[data.group_indices[:-1]].astype(np.int8) - 1


def test_blanks_build_has_exactly_that_many_blanks_and_holds_test_out_up_to_symmetry(tmp_path):
    summary = build_sudoku(tmp_path / "d", train_size=150, test_size=40, aug=3, box=2, blanks=8, seed=3)
    _check_split(tmp_path / "d", "train", 2, 4)  # unique, labelled, versions invertible
    _check_split(tmp_path / "d", "test", 2, 1)
    train = _original_puzzles(tmp_path / "d", "train")
    test = _original_puzzles(tmp_path / "d", "test")
    assert ((train == 0).sum(1) == 8).all() and ((test == 0).sum(1) == 8).all()
    seen = set().union(*(orbit_4x4(puzzle) for puzzle in train))
    assert not any(puzzle.tobytes() in seen for puzzle in test)
    assert summary["splits"]["test"]["puzzles_also_in_train"] == 0
    # the rule is not vacuous: the same test stream without it meets train puzzles' orbits
    unfiltered = np.concatenate([p for p, _, _ in generate_puzzles(40, box=2, seed=3, split="test", blanks=8)])
    assert sum(puzzle.tobytes() in seen for puzzle in unfiltered) >= 2
    # redrawn puzzles come from seeded streams too: the same build gives the same bytes
    build_sudoku(tmp_path / "e", train_size=150, test_size=40, aug=3, box=2, blanks=8, seed=3)
    first, again = _arrays(tmp_path / "d"), _arrays(tmp_path / "e")
    assert all(np.array_equal(first[key], again[key]) for key in first)


@pytest.mark.parametrize("args, message", [
    (dict(box=2, blanks=13), "--blanks must be between 1 and 12"),
    (dict(box=2, blanks=4, min_difficulty=2), "cannot be combined with --min-difficulty"),
    # 4x4 puzzles with 12 blanks (4 givens) form ~9 orbits: 300 train puzzles cover them all
    (dict(box=2, blanks=12, train_size=300, test_size=2, aug=0), "keep coinciding with train puzzles"),
])
def test_blanks_errors(tmp_path, args, message):
    with pytest.raises(HrmError, match=message):
        build_sudoku(tmp_path / "d", **{"train_size": 4, "test_size": 2, **args})
    assert not (tmp_path / "d").exists()


# ----------------------------------------------------------------------------- CSV import


def _puzzle_rows(count: int, box: int = 3, seed: int = 0) -> list[tuple[str, str]]:
    peers, units = sudoku_tables(box)
    seeds = np.arange(seed, seed + count, dtype=np.uint64) + np.uint64(1000)
    puzzles, solutions, _, _ = generate_batch(seeds, np.zeros(count, np.int64), peers, units, box * box, 0, 0)
    as_text = lambda grid, blank: "".join(str(d) if d else blank for d in grid)  # noqa: E731
    return [(as_text(p, "." if i % 2 else "0"), as_text(s, "")) for i, (p, s) in
            enumerate(zip(puzzles.tolist(), solutions.tolist()))]


def write_csv(path, rows, ratings=None) -> None:
    lines = ["source,question,answer,rating"]
    lines += [f"gen,{q},{a},{ratings[i] if ratings else i}" for i, (q, a) in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")


def test_csv_import_subsamples_seeded_and_keeps_source_rating(tmp_path):
    rows = _puzzle_rows(30)
    (tmp_path / "csv").mkdir()
    write_csv(tmp_path / "csv" / "train.csv", rows)
    write_csv(tmp_path / "csv" / "test.csv", rows[:5])
    summaries = [build_sudoku(tmp_path / name, train_size=10, test_size=10, aug=2, box=3, seed=seed,
                              from_csv=tmp_path / "csv") for name, seed in (("a", 1), ("b", 1), ("c", 2))]
    a, b, c = _arrays(tmp_path / "a"), _arrays(tmp_path / "b"), _arrays(tmp_path / "c")
    # test.csv holds train.csv's first 5 rows: the overlap is reported
    overlap = len(set(a["train/group/source_rating"].tolist()) & set(range(5)))
    assert summaries[0]["splits"]["test"]["puzzles_also_in_train"] == overlap
    assert summaries[0]["splits"]["train"]["repeated_puzzles"] == 0
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["train/group/source_rating"], c["train/group/source_rating"])
    # the originals are CSV rows (file order), tokens = digit + 1; the test CSV is used whole
    data = open_dataset(tmp_path / "a").split("train").set("all")
    originals = data.group_indices[:-1]
    source = a["train/group/source_rating"]
    assert list(source) == sorted(source) and len(set(source.tolist())) == 10
    for row, line in zip(originals, source):
        question, answer = rows[line]
        assert "".join(str(t - 1) if t > 1 else "0" for t in a["train/inputs"][row]) == question.replace(".", "0")
        assert "".join(str(t - 1) for t in a["train/labels"][row]) == answer
    assert list(a["test/group/source_rating"]) == [0, 1, 2, 3, 4]
    _check_split(tmp_path / "a", "train", 3, 3)


def _bad_rows(rows):
    """(row index, broken (question, answer), reason fragment) for each kind of bad row."""
    q, a = rows[3]
    multi = list(q)
    clue = next(i for i, ch in enumerate(multi) if ch not in ".0")
    multi[clue] = "0"  # a minimal puzzle minus a clue has several solutions
    wrong = list(q)
    wrong[clue] = str(int(q[clue]) % 9 + 1)  # clue contradicts the answer
    return [
        (q[:80], a, "not 81 characters"),
        (q[:5] + "x" + q[6:], a, "question has 'x' at position 6"),
        ("".join(wrong), a, f"contradicts clue {wrong[clue]}"),
        ("".join(multi), a, "more than one solution"),
        (q, a[1:] + a[0], "answer"),
    ]


def csv_with_bad_row(folder, case: int, count: int = 6) -> str:
    """DIR/train.csv of `count` puzzles whose 4th (line 5) is broken as `_bad_rows`[case] says,
    DIR/test.csv of 2 good ones; returns the expected message fragment."""
    rows = _puzzle_rows(count)
    question, answer, fragment = _bad_rows(rows)[case]
    rows[3] = (question, answer)
    folder.mkdir()
    write_csv(folder / "train.csv", rows)
    write_csv(folder / "test.csv", rows[:2])
    return fragment


@pytest.mark.parametrize("case", range(5))
def test_bad_csv_row_names_its_line(tmp_path, case):
    fragment = csv_with_bad_row(tmp_path / "csv", case)
    with pytest.raises(HrmError, match=r"train\.csv:5: .*" + fragment):
        build_sudoku(tmp_path / "d", train_size=6, test_size=2, aug=1, from_csv=tmp_path / "csv")
    assert not (tmp_path / "d").exists()
    summary = build_sudoku(tmp_path / "d", train_size=6, test_size=2, aug=1, from_csv=tmp_path / "csv",
                           skip_invalid=True)
    assert summary["splits"]["train"]["skipped_rows"] == 1 and summary["splits"]["train"]["groups"] == 5


def test_4x4_test_split_never_repeats_itself_up_to_symmetry(tmp_path, capfd):
    """The held-out split holds distinct puzzles (orbits by brute force over the whole group);
    the train split's repeats are reported as such, and no split but test is said to be 'in train'."""
    summary = build_sudoku(tmp_path / "d", train_size=150, test_size=200, aug=0, box=2, blanks=8, seed=4)
    test = _original_puzzles(tmp_path / "d", "test")
    orbits = [orbit_4x4(puzzle) for puzzle in test]
    for i in range(len(test)):
        assert not any(test[j].tobytes() in orbits[i] for j in range(i)), i
    assert summary["splits"]["test"]["repeated_puzzles"] == 0
    # not vacuous: the same stream without the rule repeats itself
    unfiltered = np.concatenate([p for p, _, _ in generate_puzzles(200, box=2, seed=4, split="test", blanks=8)])
    seen, repeats = set(), 0
    for puzzle in unfiltered:
        repeats += puzzle.tobytes() in seen
        seen |= orbit_4x4(puzzle)
    assert repeats > 0
    stderr = capfd.readouterr().err
    assert "also in train" not in stderr and "also train puzzles" not in stderr
    train_repeats = summary["splits"]["train"]["repeated_puzzles"]
    if train_repeats:
        assert f"train: {train_repeats} of 150 puzzles" in stderr and "(equal up to symmetry)" in stderr
