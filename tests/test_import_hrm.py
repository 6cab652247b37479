"""`hrm build-data import-hrm`: round trip of small datasets written in the reference layout by
the test itself, descriptors from ARC names, streaming in pieces, and refused inputs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import hrm.builders.import_hrm as import_module
from hrm.builders.dataset import open_dataset
from hrm.builders.import_hrm import import_hrm
from tests.conftest import assert_one_line_error, run_hrm

ARC_NAMES = ["<blank>", "abc", "abc_t1_0213456789", "xyz", "xyz_t7_0987654321", "xyz_t0_0123456798"]


def _write_reference(root: Path, *, seq_len: int, vocab: int, names: list[str], splits: dict) -> dict:
    """Write the reference layout; `splits` = {split: (examples_per_puzzle, puzzles_per_group, ids)}."""
    rng = np.random.default_rng(0)
    written = {}
    root.mkdir(parents=True)
    (root / "identifiers.json").write_text(json.dumps(names))
    for split, (per_puzzle, per_group, ids) in splits.items():
        (root / split).mkdir()
        n = sum(per_puzzle)
        arrays = {"inputs": rng.integers(0, vocab, (n, seq_len)).astype(np.int32),
                  "labels": rng.integers(0, vocab, (n, seq_len)).astype(np.int32),
                  "puzzle_identifiers": np.array(ids, np.int32),
                  "puzzle_indices": np.concatenate([[0], np.cumsum(per_puzzle)]).astype(np.int32),
                  "group_indices": np.concatenate([[0], np.cumsum(per_group)]).astype(np.int32)}
        for field, array in arrays.items():
            np.save(root / split / f"all__{field}.npy", array)
        meta = {"pad_id": 0, "ignore_label_id": 0, "blank_identifier_id": 0, "vocab_size": vocab,
                "seq_len": seq_len, "num_puzzle_identifiers": len(names), "total_groups": len(per_group),
                "mean_puzzle_examples": n / len(per_puzzle), "sets": ["all"]}
        (root / split / "dataset.json").write_text(json.dumps(meta))
        written[split] = arrays
    return written


def _arc_reference(root: Path) -> dict:
    return _write_reference(root, seq_len=900, vocab=12, names=ARC_NAMES, splits={
        "train": ([2, 2, 1, 3, 1], [2, 3], [1, 2, 3, 4, 5]),
        "test": ([1, 1, 2, 2, 2], [2, 3], [1, 2, 3, 4, 5])})


def _check_round_trip(out: Path, written: dict) -> None:
    dataset = open_dataset(out)
    assert dataset.task == "arc" and list(dataset.identifiers()) == ARC_NAMES
    for split, arrays in written.items():
        puzzle_set = dataset.split(split).set("all")
        assert dataset.split(split).seq_len == 900 and dataset.split(split).vocab_size == 12
        inputs, labels = puzzle_set.rows(0, puzzle_set.num_examples)
        assert np.array_equal(inputs, arrays["inputs"]) and np.array_equal(labels, arrays["labels"])
        for key in ("puzzle_identifiers", "puzzle_indices", "group_indices"):
            assert np.array_equal(getattr(puzzle_set, key), arrays[key]), key
        # descriptors from the names, checked by hand: t1 with 1<->2 swapped, t7 reversing 1-9, t0 with 8<->9
        assert puzzle_set.field("aug_dihedral").tolist() == [0, 1, 0, 7, 0]
        maps = puzzle_set.field("aug_colour_map")
        assert maps[1].tolist() == [0, 2, 1, 3, 4, 5, 6, 7, 8, 9] and maps[3].tolist() == [0, 9, 8, 7, 6, 5, 4, 3, 2, 1]
        assert maps[4].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 9, 8] and maps[0].tolist() == list(range(10))


def test_arc_round_trip_through_the_cli(tmp_path):
    written = _arc_reference(tmp_path / "ref")
    result = run_hrm("build-data", "import-hrm", tmp_path / "ref", "--out", tmp_path / "out", "--json", check=True)
    assert json.loads(result.stdout)["task"] == "arc"
    _check_round_trip(tmp_path / "out", written)


def test_streaming_in_pieces_gives_the_same_dataset(tmp_path, monkeypatch):
    written = _arc_reference(tmp_path / "ref")
    monkeypatch.setattr(import_module, "_BATCH_ROWS", 2)  # the 6-example group goes in pieces
    import_hrm(tmp_path / "ref", tmp_path / "out")
    _check_round_trip(tmp_path / "out", written)


def test_sudoku_gets_identity_descriptors_in_test_only(tmp_path):
    _write_reference(tmp_path / "ref", seq_len=81, vocab=11, names=["<blank>"], splits={
        "train": ([1] * 6, [3, 3], [0] * 6), "test": ([1] * 4, [1] * 4, [0] * 4)})
    import_hrm(tmp_path / "ref", tmp_path / "out")
    dataset = open_dataset(tmp_path / "out")
    assert dataset.task == "sudoku" and dataset.num_identifiers == 1
    test = dataset.split("test").set()
    assert test.field("aug_row_perm").tolist() == [list(range(9))] * 4
    assert test.field("aug_digit_map").tolist() == [list(range(10))] * 4
    assert test.field("aug_transpose").tolist() == [0] * 4
    assert dataset.split("train").set().field_names() == []


@pytest.mark.parametrize("damage, fragments", [
    ("pickle", ("all__inputs.npy", "not a plain numeric")),
    ("indices", ("all__puzzle_indices.npy", "non-decreasing")),
    ("identifiers", ("all__puzzle_identifiers.npy", "0..5")),
    ("tokens", ("all__labels.npy", "row 3", "outside 0..11")),
    ("task", ("cannot tell the task", "--task")),
    ("no_meta", ("no train/dataset.json",)),
])
def test_bad_reference_datasets_fail_in_one_line(tmp_path, damage, fragments):
    _arc_reference(tmp_path / "ref")
    train = tmp_path / "ref" / "train"
    if damage == "pickle":
        np.save(train / "all__inputs.npy", np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    elif damage == "indices":
        np.save(train / "all__puzzle_indices.npy", np.array([0, 2, 1, 5, 6, 9]))
    elif damage == "identifiers":
        np.save(train / "all__puzzle_identifiers.npy", np.array([1, 2, 3, 4, 9]))
    elif damage == "tokens":
        labels = np.load(train / "all__labels.npy")
        labels[3, 7] = 12
        np.save(train / "all__labels.npy", labels)
    elif damage == "task":
        for split in ("train", "test"):
            meta = json.loads((tmp_path / "ref" / split / "dataset.json").read_text())
            (tmp_path / "ref" / split / "dataset.json").write_text(json.dumps({**meta, "vocab_size": 13}))
    else:
        (train / "dataset.json").unlink()
        (tmp_path / "ref" / "test" / "dataset.json").unlink()
    result = run_hrm("build-data", "import-hrm", tmp_path / "ref", "--out", tmp_path / "out")
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
