"""End to end: train the smoke preset briefly, `hrm eval` the checkpoint, and find the numbers
the trainer logged for it; rescoring the saved predictions table gives them again."""
from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO, assert_one_line_error, run_hrm
from tests.eval_helpers import write_grid_dataset
from tests.sudoku4_data import write_sudoku4


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    # 1 blank per 4x4 puzzle and a short warmup: after a few steps the model solves some test
    # puzzles exactly, so the comparison below is not 0 == 0
    write_sudoku4(root / "data", train_size=128, test_size=64, blanks=1)
    run_hrm("train", "--data", root / "data", "--out", root / "run", "--config", REPO / "examples" / "smoke.yaml",
            "max_steps=12", "lr_warmup_steps=2", "--quiet", check=True)
    return root


def accuracies_from_table(table_path, data) -> tuple[float, float]:
    """(exact accuracy, token accuracy) of a predictions table in numpy: a row is exact when every
    labelled position is right; token accuracy is the mean over rows of the right share of its
    labelled positions."""
    from hrm.builders.dataset import open_dataset

    table = pq.read_table(table_path)
    rows = table.column("example").to_numpy()
    predictions = np.stack(table.column("prediction").to_numpy(zero_copy_only=False))
    split = open_dataset(data).split("test")
    _, labels = split.set("all").rows(0, split.set("all").num_examples)
    labels = labels[rows]
    ignore = split.attrs.get("ignore_label_id")
    scored = labels != ignore if ignore is not None else np.ones(labels.shape, bool)
    right = (predictions == labels) & scored
    return float((right.sum(1) == scored.sum(1)).mean()), float((right.sum(1) / scored.sum(1)).mean())


def test_eval_reports_what_the_trainer_logged(trained):
    root = trained
    logged = [json.loads(p.read_text()) for p in sorted((root / "run" / "eval").glob("step_*.json"))][-1]
    checkpoint = root / "run" / "checkpoints" / f"step_{logged['step']}.pt"
    result = run_hrm("eval", "--checkpoint", checkpoint, "--data", root / "data", "--json", "--out", root / "out",
                     check=True)
    summary = json.loads(result.stdout)
    assert 0 < logged["exact_accuracy"] < 1 and 0 < logged["accuracy"] < 1
    # The oracle: both numbers recomputed here from the saved predictions and the labels.
    exact, token = accuracies_from_table(root / "out" / "predictions.parquet", root / "data")
    assert logged["exact_accuracy"] == pytest.approx(exact, abs=1e-9)
    assert logged["accuracy"] == pytest.approx(token, abs=1e-6)
    assert summary["exact_accuracy"] == pytest.approx(exact, abs=1e-9)
    assert summary["token_accuracy"] == pytest.approx(token, abs=1e-6)
    assert summary["predictions"] == logged["count"] == 64
    # unaugmented test split: pass@1 is the exact accuracy
    assert summary["pass@1"] == pytest.approx(summary["exact_accuracy"])
    rescored = json.loads(run_hrm("eval", "--predictions", root / "out" / "predictions.parquet", "--data",
                                  root / "data", "--json", check=True).stdout)
    for key in ("exact_accuracy", "token_accuracy", "pass@1", "pass@2", "valid_accuracy"):
        assert rescored[key] == summary[key]


def test_torchrun_ranks_share_the_work(trained, tmp_path):
    """Two CPU processes (gloo): each predicts half of every batch, rank 0 gathers and reports."""
    import os
    import subprocess
    import sys

    single = json.loads(run_hrm("eval", "--checkpoint", trained / "run", "--data", trained / "data", "--json",
                                "--batch-size", "16", "--quiet", check=True).stdout)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                             "--master_port", str(29400 + os.getpid() % 500), "-m", "hrm", "eval",
                             "--checkpoint", trained / "run", "--data", trained / "data", "--json",
                             "--batch-size", "16", "--quiet", "--predictions", tmp_path / "p.parquet"],
                            capture_output=True, text=True, env=env, timeout=600, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    reports = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == 1  # only rank 0 prints
    distributed = json.loads(reports[0])
    for key in ("exact_accuracy", "token_accuracy", "pass@1", "predictions", "valid_accuracy"):
        assert distributed[key] == single[key]
    rows = pq.read_table(tmp_path / "p.parquet").column("example").to_numpy()
    assert np.array_equal(np.sort(rows), np.arange(64))


def test_checkpoint_for_another_dataset_is_refused(trained, tmp_path):
    grid = np.ones((1, 36), np.uint8)
    write_grid_dataset(tmp_path / "maze", "maze", grid, grid, vocab_size=6)
    # --quiet: the model logs its attention backend while loading, before the check can run
    result = run_hrm("eval", "--checkpoint", trained / "run", "--data", tmp_path / "maze", "--quiet")
    assert_one_line_error(result, "does not match")
