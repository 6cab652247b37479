"""The dataset format library: round trip, streaming shards, atomic output, version checks."""
from __future__ import annotations

import json

import numpy as np
import pytest

from hrm.common import HrmError
from hrm.builders.dataset import DatasetWriter, atomic_directory, open_dataset
from tests.conftest import assert_one_line_error, run_hrm


def _write(path, groups, seq_len=16, force=False):
    """Write `groups` (list of lists of example counts per puzzle) with row-numbered tokens."""
    with atomic_directory(path, force=force) as tmp:
        writer = DatasetWriter(tmp, task="sudoku", seed=7, builder={"box": 2})
        split = writer.split("train", seq_len=seq_len, vocab_size=6)
        row = 0
        for group in groups:
            n = sum(group)
            inputs = (np.arange(row, row + n)[:, None] + np.arange(seq_len)[None]) % 256
            ids = writer.add_identifiers([f"g{row}_{k}" for k in range(len(group))])
            split.set().append(inputs.astype(np.uint8), (inputs[:, ::-1]).astype(np.uint8),
                               examples_per_puzzle=group, puzzles_per_group=[len(group)],
                               puzzle_identifiers=ids,
                               puzzle_fields={"aug_dihedral": np.arange(len(group), dtype=np.uint8)},
                               group_fields={"rating": np.array([n], np.int32)})
            row += n
        writer.close()
    return row


def test_round_trip_indices_fields_and_row_ranges(tmp_path):
    rng = np.random.default_rng(0)
    groups = [list(rng.integers(1, 4, size=rng.integers(1, 5))) for _ in range(3000)]
    n = _write(tmp_path / "d", groups)
    dataset = open_dataset(tmp_path / "d")
    assert dataset.task == "sudoku" and dataset.attrs["seed"] == 7
    puzzle_set = dataset.split("train").set("all")
    assert puzzle_set.num_examples == n
    sizes = [s for g in groups for s in g]
    assert np.array_equal(np.diff(puzzle_set.puzzle_indices), sizes)
    assert np.array_equal(np.diff(puzzle_set.group_indices), [len(g) for g in groups])
    assert np.array_equal(puzzle_set.field("rating", "group"), [sum(g) for g in groups])
    assert np.array_equal(puzzle_set.field("aug_dihedral"), [k for g in groups for k in range(len(g))])
    names = dataset.identifiers()
    assert names[0] == "<blank>" and len(names) == dataset.num_identifiers == 1 + len(sizes)
    assert names[puzzle_set.puzzle_identifiers[-1]] == f"g{n - groups[-1][-1] - sum(groups[-1][:-1])}_{len(groups[-1]) - 1}"
    # any row range reads back exactly what was written, across shard boundaries
    for start in (0, 4095, n - 3):
        inputs, labels = puzzle_set.rows(start, start + 3)
        expected = (np.arange(start, start + 3)[:, None] + np.arange(16)[None]) % 256
        assert np.array_equal(inputs, expected) and np.array_equal(labels, expected[:, ::-1])
    attrs = dataset.split("train").attrs
    assert attrs["total_groups"] == len(groups) and attrs["num_puzzle_identifiers"] == len(names)
    assert attrs["mean_puzzle_examples"] == pytest.approx(n / len(sizes))


def test_existing_output_needs_force_and_failed_build_leaves_nothing(tmp_path):
    _write(tmp_path / "d", [[1]])
    with pytest.raises(HrmError, match="--force"):
        _write(tmp_path / "d", [[2]])
    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "e") as tmp:
            DatasetWriter(tmp, task="maze", seed=0, builder={})
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
    _write(tmp_path / "d", [[2]], force=True)
    assert open_dataset(tmp_path / "d").split("train").set().num_examples == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_foreign_and_newer_formats_are_refused(tmp_path):
    _write(tmp_path / "d", [[1]])
    meta_path = tmp_path / "d" / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["attributes"]["format_version"] = 2
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(HrmError, match="version 2.*upgrade"):
        open_dataset(tmp_path / "d")
    meta["attributes"]["format"] = "something-else"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(HrmError, match="not an hrm dataset"):
        open_dataset(tmp_path / "d")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run_hrm("inspect", tmp_path / "empty"), "not an hrm dataset")
    assert_one_line_error(run_hrm("inspect", tmp_path / "missing"), "does not exist")


def test_inspect_reports_counts_as_json(tmp_path):
    _write(tmp_path / "d", [[1, 2], [3]])
    result = run_hrm("inspect", tmp_path / "d", "--json", check=True)
    info = json.loads(result.stdout)
    assert info["splits"]["train"]["sets"]["all"]["examples"] == 6
    assert info["splits"]["train"]["sets"]["all"]["group_fields"]["rating"]["max"] == 3
