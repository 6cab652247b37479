"""The one output rule (hrm.common.outputs): --force replaces only what hrm wrote or an empty
folder, never the current folder or its parents, and nothing is left behind on any path."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hrm.common import HrmError
from hrm.common.outputs import OutputKind, atomic_directory, check_output, output_file
from tests.conftest import assert_one_line_error, run_hrm

SUDOKU = ("build-data", "sudoku", "--box", "2", "--blanks", "6", "--train-size", "4", "--test-size", "2",
          "--aug", "1", "--quiet")
ARC_TASK = {"train": [{"input": [[1, 0], [0, 1]], "output": [[2, 0], [0, 2]]}],
            "test": [{"input": [[1, 1], [0, 1]], "output": [[2, 2], [0, 2]]}]}
MINE = OutputKind("a test output", directory=True, written_by_hrm=lambda p: (p / "MINE").is_file())


def listing(folder: Path) -> list[str]:
    """Every path under `folder` (hidden ones too), so leftovers such as .x.partial-* show."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def user_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "important.txt").write_text("my thesis")
    return path


def test_force_refuses_a_folder_hrm_did_not_write_and_keeps_it(tmp_path):
    out = user_folder(tmp_path / "papers")
    before = listing(tmp_path)
    result = run_hrm(*SUDOKU, "--out", out, "--force")
    assert_one_line_error(result, "refusing to replace", str(out), "important.txt")
    assert (out / "important.txt").read_text() == "my thesis"
    assert listing(tmp_path) == before


def test_force_replaces_an_hrm_dataset_and_leaves_nothing_behind(tmp_path):
    out = tmp_path / "data" / "s4"  # missing parents are created
    run_hrm(*SUDOKU, "--out", out, check=True)
    assert_one_line_error(run_hrm(*SUDOKU, "--out", out), "already exists", "--force")
    run_hrm(*SUDOKU, "--out", out, "--seed", "1", "--force", check=True)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["s4"]


def test_an_empty_folder_is_used_without_force(tmp_path):
    (tmp_path / "empty").mkdir()
    run_hrm(*SUDOKU, "--out", tmp_path / "empty", check=True)
    assert (tmp_path / "empty" / "zarr.json").is_file()


@pytest.mark.parametrize("target", [".", ".."])
def test_the_current_folder_and_its_parents_are_never_replaced(tmp_path, target):
    here = tmp_path / "work" / "here"
    here.mkdir(parents=True)
    before = listing(tmp_path)
    result = run_hrm(*SUDOKU, "--out", target, "--force", cwd=here)
    assert_one_line_error(result, "current folder or one of its parents")
    assert listing(tmp_path) == before


def test_force_on_a_file_refuses_and_leaves_no_sibling(tmp_path):
    out = tmp_path / "notes.txt"
    out.write_text("keep me")
    result = run_hrm(*SUDOKU, "--out", out, "--force")
    assert_one_line_error(result, "refusing to replace", "a file")
    assert out.read_text() == "keep me" and listing(tmp_path) == ["notes.txt"]


def test_train_force_refuses_a_foreign_folder(tmp_path):
    data = tmp_path / "d"
    run_hrm(*SUDOKU, "--out", data, check=True)
    run = user_folder(tmp_path / "run")
    result = run_hrm("train", "--data", data, "--out", run, "--force", "--quiet")
    assert_one_line_error(result, "refusing to replace", "not a training run written by hrm")
    assert (run / "important.txt").is_file()


def test_atomic_directory_failure_and_recheck(tmp_path):
    out = tmp_path / "o"
    with pytest.raises(RuntimeError):
        with atomic_directory(out, MINE) as tmp:
            (tmp.mkdir(), (tmp / "MINE").write_text(""))
            raise RuntimeError("build failed")
    assert listing(tmp_path) == []
    with atomic_directory(out, MINE) as tmp:
        tmp.mkdir()
        (tmp / "MINE").write_text("1")
    with atomic_directory(out, MINE, force=True) as tmp:
        tmp.mkdir()
        (tmp / "MINE").write_text("2")
    assert listing(tmp_path) == ["o", "o/MINE"] and (out / "MINE").read_text() == "2"


def test_symlinks_and_kind_mismatches_are_refused(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "MINE").write_text("")
    os.symlink(tmp_path / "real", tmp_path / "link")
    with pytest.raises(HrmError, match="symbolic link"):
        check_output(tmp_path / "link", MINE, force=True)
    file_kind = OutputKind("a test file", directory=False, written_by_hrm=lambda p: True)
    with pytest.raises(HrmError, match="it is a folder"):
        check_output(tmp_path / "real", file_kind, force=True)
    with output_file(tmp_path / "new" / "f.txt", file_kind) as tmp:  # parents created
        tmp.write_text("x")
    assert (tmp_path / "new" / "f.txt").read_text() == "x"


@pytest.fixture(scope="module")
def arc_predictions(tmp_path_factory):
    """A one-task ARC dataset and a predictions table for it (its labels), made without a model."""
    import numpy as np

    from hrm.builders.dataset import open_dataset
    from hrm.eval.predictions import PredictionWriter, predictions_dataset_signature

    root = tmp_path_factory.mktemp("arc_out")
    (root / "tasks" / "evaluation").mkdir(parents=True)
    (root / "tasks" / "evaluation" / "abcd0001.json").write_text(json.dumps(ARC_TASK))
    run_hrm("build-data", "arc", "--input", root / "tasks", "--subsets", "evaluation", "--aug", "1",
            "--out", root / "arc", "--quiet", check=True)
    dataset = open_dataset(root / "arc")
    split = dataset.split("test")
    table = root / "preds.parquet"
    with PredictionWriter(table, seq_len=split.seq_len,
                         signature=predictions_dataset_signature(dataset, "test")) as writer:
        for set_name in split.sets:
            inputs, labels = split.set(set_name).rows(0, split.set(set_name).num_examples)
            writer.write(set_name, np.arange(len(labels)), labels, np.zeros(len(labels), np.float32))
    return root


@pytest.mark.parametrize("option, name", [("--submission", "sub.json"), ("--out", "eval")])
def test_every_eval_output_follows_the_rule(arc_predictions, tmp_path, option, name):
    base = ("eval", "--predictions", arc_predictions / "preds.parquet", "--data", arc_predictions / "arc", "--quiet")
    target = tmp_path / "deep" / name  # a missing parent is created, for every output alike
    run_hrm(*base, option, target, check=True)
    assert_one_line_error(run_hrm(*base, option, target), "already exists", "--force")
    run_hrm(*base, option, target, "--force", check=True)
    foreign = tmp_path / "foreign"
    if option == "--submission":
        foreign.write_text("not a submission")
    else:
        foreign.mkdir()
        (foreign / "metrics.json").write_text("[1, 2]")
    assert_one_line_error(run_hrm(*base, option, foreign, "--force"), "refusing to replace")
    hidden = [p for p in tmp_path.rglob(".*")]
    assert hidden == []


def test_show_png_follows_the_rule(arc_predictions, tmp_path):
    png = tmp_path / "pics" / "task.png"
    show = ("show", arc_predictions / "arc", "--task", "abcd0001", "--quiet", "--png", png)
    run_hrm(*show, check=True)
    assert_one_line_error(run_hrm(*show), "already exists", "--force")
    run_hrm(*show, "--force", check=True)
    photo = tmp_path / "photo.png"
    photo.write_bytes(png.read_bytes()[:8] + b"not ours")
    assert_one_line_error(run_hrm(*show[:-1], photo, "--force"), "refusing to replace")
    assert photo.read_bytes().endswith(b"not ours")
