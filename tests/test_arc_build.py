"""The ARC builder on small fixtures (both layouts): split semantics, encoding, augmentation,
translation, determinism, shortfalls, streaming in pieces."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import hrm.builders.arc as arc_builder
from hrm.builders.arc import build_arc
from hrm.builders.dataset import open_dataset
from tests.arc_oracle import FORWARD, check_dataset, read_tasks_json
from tests.conftest import REPO, run_hrm

FIXTURES = REPO / "tests" / "fixtures" / "arc"
SUBSETS = ["training", "evaluation", "concept"]


@pytest.fixture(scope="module")
def fixture_tasks() -> dict[str, dict]:
    return read_tasks_json(FIXTURES / "kaggle", "fx", SUBSETS)


def _arrays(path: Path) -> dict[str, np.ndarray]:
    dataset = open_dataset(path)
    out = {"identifiers": dataset.identifiers()}
    for split in ("train", "test"):
        puzzle_set = dataset.split(split).set()
        for key in ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices"):
            out[f"{split}/{key}"] = puzzle_set.group[key][:]
        for key in puzzle_set.field_names():
            out[f"{split}/{key}"] = puzzle_set.field(key)
    return out


def _files(path: Path) -> dict[str, str]:
    return {str(f.relative_to(path)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(path.rglob("*")) if f.is_file()}


def test_both_layouts_build_the_same_dataset_and_it_decodes(tmp_path, fixture_tasks):
    build_arc(tmp_path / "kaggle", inputs=[str(FIXTURES / "kaggle")], aug=6, seed=3)
    build_arc(tmp_path / "tasks", inputs=[str(FIXTURES / "tasks")], aug=6, seed=3)
    kaggle, tasks = _arrays(tmp_path / "kaggle"), _arrays(tmp_path / "tasks")
    assert kaggle.keys() == tasks.keys()
    for key in kaggle:
        assert np.array_equal(kaggle[key], tasks[key]), key
    stats = check_dataset(tmp_path / "kaggle", fixture_tasks, "evaluation", aug=6)
    assert stats["translated"] > 0
    dataset = open_dataset(tmp_path / "kaggle")
    assert dataset.task == "arc" and dataset.attrs["arc_tasks"] == {"training": 3, "evaluation": 2, "concept": 2}
    split = dataset.split("train")
    assert (split.seq_len, split.vocab_size, split.attrs["pad_id"], split.attrs["ignore_label_id"]) == (900, 12, 0, 0)


def test_same_seed_same_bytes_other_seed_other_arrays(tmp_path):
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        build_arc(tmp_path / name, inputs=[str(FIXTURES / "kaggle")], aug=4, seed=seed)
    files_a = _files(tmp_path / "a")
    assert files_a == _files(tmp_path / "b")
    a, c = _arrays(tmp_path / "a"), _arrays(tmp_path / "c")
    assert not np.array_equal(a["train/inputs"], c["train/inputs"])


def _distinct_versions(pairs) -> int:
    """Brute force over all 8 x 9! augmentations restricted to the colours used."""
    from itertools import permutations
    used = sorted({int(c) for a, b in pairs for c in np.concatenate([a.ravel(), b.ravel()]) if c})
    contents = set()
    for transform in range(8):
        forward = FORWARD[transform]
        for targets in permutations(range(1, 10), len(used)):
            colour_map = np.arange(10)
            colour_map[used] = targets
            contents.add(tuple(sorted(
                bytes([*forward(colour_map[a]).shape, *forward(colour_map[b]).shape])
                + forward(colour_map[a]).astype(np.uint8).tobytes() + forward(colour_map[b]).astype(np.uint8).tobytes()
                for a, b in pairs)))
    return len(contents)


def test_draw_versions_finds_every_distinct_version(fixture_tasks):
    """With 5 x 1000 tries, a task with few distinct versions (72 at most here) gets all of them."""
    for name in ("t_mono", "e_one"):
        task = fixture_tasks[name]
        packed = arc_builder._Packed.of(_as_arc_task(name, task), in_test_set=False)
        transforms, maps = arc_builder.draw_versions(packed, 1000, np.random.default_rng(0))
        assert len(transforms) == min(1001, _distinct_versions(task["train"] + task["test"]))
    assert _distinct_versions(fixture_tasks["t_mono"]["train"] + fixture_tasks["t_mono"]["test"]) == 2


def _as_arc_task(name, task):
    from hrm.builders.arc_io import ArcTask
    as_uint8 = lambda pairs: [(a.astype(np.uint8), b.astype(np.uint8)) for a, b in pairs]
    return ArcTask(name, task["subset"], "test", as_uint8(task["train"]), as_uint8(task["test"]))


def test_shortfalls_are_reported_and_stored(tmp_path, fixture_tasks):
    result = run_hrm("build-data", "arc", "--out", tmp_path / "d", "--input", FIXTURES / "kaggle", "--aug", "100",
                     "--json", check=True)
    summary = json.loads(result.stdout)
    dataset = open_dataset(tmp_path / "d")
    shortfall = dataset.attrs["aug_shortfall"]
    assert {"t_mono", "e_one"} <= set(shortfall) and summary["shortfall_tasks"] == len(shortfall)
    assert "fewer than 100" in result.stderr and "t_mono" in result.stderr
    train = dataset.split("train").set()
    names = dataset.identifiers()
    versions = {names[train.puzzle_identifiers[start]]: stop - start - 1
                for start, stop in zip(train.group_indices[:-1], train.group_indices[1:])}
    assert versions == {name: shortfall.get(name, 100) for name in fixture_tasks}


def test_streaming_in_small_pieces_gives_the_same_dataset(tmp_path, monkeypatch):
    build_arc(tmp_path / "whole", inputs=[str(FIXTURES / "kaggle")], aug=9, seed=1)
    monkeypatch.setattr(arc_builder, "_ROWS_PER_BATCH", 5)  # groups appended in many pieces
    build_arc(tmp_path / "pieces", inputs=[str(FIXTURES / "kaggle")], aug=9, seed=1)
    whole, pieces = _arrays(tmp_path / "whole"), _arrays(tmp_path / "pieces")
    for key in ("train/group_indices", "train/puzzle_indices", "test/group_indices", "identifiers",
                "train/aug_colour_map", "test/inputs"):
        assert np.array_equal(whole[key], pieces[key]), key


def test_no_augmentation_gives_only_the_identity(tmp_path, fixture_tasks):
    build_arc(tmp_path / "d", inputs=[str(FIXTURES / "tasks")], aug=0)
    check_dataset(tmp_path / "d", fixture_tasks, "evaluation", aug=0)
    names = open_dataset(tmp_path / "d").identifiers()
    assert sorted(names[1:]) == sorted(fixture_tasks)


def test_other_test_set_moves_tasks_between_splits(tmp_path, fixture_tasks):
    build_arc(tmp_path / "d", inputs=[str(FIXTURES / "kaggle")], test_set="concept", aug=2)
    check_dataset(tmp_path / "d", fixture_tasks, "concept", aug=2)


def test_inspect_shows_tasks_versions_and_shortfalls(tmp_path):
    build_arc(tmp_path / "d", inputs=[str(FIXTURES / "kaggle")], aug=100)
    text = run_hrm("inspect", tmp_path / "d", check=True).stdout
    assert "arc_tasks: {'training': 3, 'evaluation': 2, 'concept': 2}" in text
    assert "aug_shortfall_tasks: 2" in text and "e_one" in text
    assert "train: seq_len 900, vocab 12" in text and "all: 7 groups" in text and "all: 2 groups" in text
    assert "puzzles/group min 2 " in text and "max 101" in text
    assert "test[0] input" in text


def test_a_failing_write_stops_the_build_and_leaves_nothing(tmp_path, monkeypatch):
    from hrm.builders.dataset import SetWriter

    def disk_full(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(SetWriter, "append_to_group", disk_full)  # runs on the writer thread
    with pytest.raises(OSError, match="disk full"):
        build_arc(tmp_path / "d", inputs=[str(FIXTURES / "kaggle")], aug=2)
    assert list(tmp_path.iterdir()) == []
