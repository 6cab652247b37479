"""The predictions table (round trip, validation) and `hrm eval` as a user runs it: output
formats, per-task results, and one-line errors."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hrm.common import HrmError
from hrm.builders.dataset import open_dataset
from hrm.eval.predictions import PredictionWriter, predictions_dataset_signature, iter_predictions
from hrm.eval.run import evaluate
from tests.conftest import assert_one_line_error, run_hrm
from tests.eval_helpers import answer_rows, random_arc_tasks, write_arc_dataset, write_grid_dataset, write_table


@pytest.fixture(scope="module")
def small_arc(tmp_path_factory):
    tasks = random_arc_tasks(np.random.default_rng(7), num_tasks=3, versions=3)
    root = tmp_path_factory.mktemp("cli")
    write_arc_dataset(root / "arc", tasks)
    rows = answer_rows(tasks, lambda t, truth: truth if t != 2 else np.zeros((1, 1), np.uint8) + (truth[0, 0] + 1) % 10)
    signature = predictions_dataset_signature(open_dataset(root / "arc"))
    write_table(root / "preds.parquet", rows, 900, signature=signature)
    return root, tasks, rows


def test_table_round_trip_streams_row_groups(small_arc, tmp_path):
    root, tasks, rows = small_arc
    parquet = pq.ParquetFile(root / "preds.parquet")
    assert parquet.metadata.num_row_groups > 1  # written with 7-row groups
    assert parquet.schema_arrow.field("prediction").type == pa.list_(pa.uint8())
    assert [parquet.schema_arrow.field(n).type for n in ("set", "example", "q_halt")] == [pa.string(), pa.int64(), pa.float32()]
    back = list(iter_predictions(root / "preds.parquet", open_dataset(root / "arc"), batch_rows=5))
    examples = np.concatenate([b.examples for b in back])
    tokens = np.concatenate([b.predictions for b in back])
    assert all(b.set_name == "all" for b in back)
    assert np.array_equal(examples, [r[0] for r in rows])
    assert np.array_equal(tokens, np.stack([r[1] for r in rows]))
    assert np.concatenate([b.q_halt for b in back]).dtype == np.float32


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with PredictionWriter(tmp_path / "p.parquet", seq_len=4) as writer:
            writer.write("all", np.arange(2), np.zeros((2, 4), np.uint8), np.zeros(2))
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_json_table_and_per_task_results(small_arc, tmp_path):
    root, tasks, rows = small_arc
    result = run_hrm("eval", "--predictions", root / "preds.parquet", "--data", root / "arc", "--vote", "2",
                     "--json", "--out", tmp_path / "out", check=True)
    summary = json.loads(result.stdout)
    for key in ("pass@1", "pass@2", "exact_accuracy", "token_accuracy", "score"):
        assert 0.0 <= summary[key] <= 1.0
    assert summary["score"] == pytest.approx(2 / 3) and summary["pass@1"] == pytest.approx(2 / 3)
    per_task = pq.read_table(tmp_path / "out" / "results.parquet").to_pylist()
    assert sorted(r["name"] for r in per_task) == sorted(t.name for t in tasks)
    for record, task in zip(sorted(per_task, key=lambda r: r["name"]), sorted(tasks, key=lambda t: t.name)):
        assert record["test_inputs"] == len(task.test_outputs)
        assert record["predictions"] == len(task.test_outputs) * len(task.versions)
        assert record["pass@1"] == (0.0 if task is tasks[2] else 1.0)
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["score"] == summary["score"]
    # the readable table
    text = run_hrm("eval", "--predictions", root / "preds.parquet", "--data", root / "arc", check=True).stdout
    assert "score (task-averaged pass@2)" in text and "66.67%" in text
    # an existing --out is kept unless --force
    again = run_hrm("eval", "--predictions", root / "preds.parquet", "--data", root / "arc", "--out", tmp_path / "out")
    assert_one_line_error(again, "results.parquet", "--force")
    run_hrm("eval", "--predictions", root / "preds.parquet", "--data", root / "arc", "--out", tmp_path / "out",
            "--force", "--quiet", check=True)


def test_one_line_errors(small_arc, tmp_path):
    root, _, _ = small_arc
    data = root / "arc"
    assert_one_line_error(run_hrm("eval", "--data", data), "--checkpoint", "--predictions")
    assert_one_line_error(run_hrm("eval", "--predictions", tmp_path / "nope.parquet", "--data", data), "nope.parquet")
    assert_one_line_error(run_hrm("eval", "--checkpoint", tmp_path / "ckpt.pt", "--data", data), "ckpt.pt", "does not exist")
    write_table(tmp_path / "sudoku.parquet", [(0, np.ones(81, np.uint8), 0.0)], 81, signature={"task": "sudoku"})
    assert_one_line_error(run_hrm("eval", "--predictions", tmp_path / "sudoku.parquet", "--data", data),
                          "task=sudoku", "another dataset")


def _raises(match: str, **kwargs) -> None:
    with pytest.raises(HrmError, match=match):
        evaluate(**kwargs)


def test_bad_inputs_are_user_errors(small_arc, tmp_path):
    """Each is an HrmError (one line through the CLI, as test_one_line_errors shows)."""
    root, _, rows = small_arc
    data = root / "arc"
    preds = [root / "preds.parquet"]
    _raises("nodata.*does not exist", data=tmp_path / "nodata", predictions=preds)
    _raises("--vote", data=data, predictions=preds, vote_k=0)
    (tmp_path / "junk.parquet").write_text("not parquet")
    _raises("junk.parquet.*not a readable Parquet", data=data, predictions=[tmp_path / "junk.parquet"])
    pq.write_table(pa.table({"set": ["all"], "example": [0]}), tmp_path / "cols.parquet")
    _raises("missing column.*prediction", data=data, predictions=[tmp_path / "cols.parquet"])
    pq.write_table(pa.table({"set": ["all"], "example": [0], "prediction": [[1, 2]], "q_halt": [0.0]}),
                   tmp_path / "types.parquet")
    _raises("'prediction' has type list.*int64.*expected a list of uint8", data=data, predictions=[tmp_path / "types.parquet"])
    # tables for another dataset: written by another tool (no metadata) with another seq_len,
    # rows beyond the set, another set, or hrm metadata naming another dataset
    plain = pa.table({"set": ["all"], "example": [0], "q_halt": pa.array([0.0], pa.float32()),
                      "prediction": pa.array([[1] * 81], pa.list_(pa.uint8()))})
    pq.write_table(plain, tmp_path / "plain81.parquet")
    _raises("81 tokens per row.*seq_len 900", data=data, predictions=[tmp_path / "plain81.parquet"])
    write_table(tmp_path / "far.parquet", [(10_000, rows[0][1], 0.0)], 900)
    _raises("example row 10000 is outside", data=data, predictions=[tmp_path / "far.parquet"])
    write_table(tmp_path / "otherset.parquet", rows[:1], 900, set_name="extra")
    _raises("set 'extra' is not in", data=data, predictions=[tmp_path / "otherset.parquet"])
    foreign = {"task": "arc", "split": "test", "seq_len": 900, "sets": {"all": 12345}}
    write_table(tmp_path / "foreign.parquet", rows[:2], 900, signature=foreign)
    _raises("12345 examples.*another dataset", data=data, predictions=[tmp_path / "foreign.parquet"])
    # options that do not fit
    _raises("one table to write", data=data, checkpoints=["a.pt"], predictions=preds * 2)
    write_table(tmp_path / "m.parquet", [], 36)
    _raises("Kaggle ARC format", data=_tiny_maze(tmp_path), predictions=[tmp_path / "m.parquet"],
            submission=tmp_path / "s.json")


def _tiny_maze(tmp_path):
    grid = np.ones((1, 36), np.uint8)
    write_grid_dataset(tmp_path / "maze", "maze", grid, grid, vocab_size=6)
    return tmp_path / "maze"


def test_ensemble_sources_are_reported(small_arc):
    root, _, _ = small_arc
    result = run_hrm("eval", "--predictions", root / "preds.parquet", "--predictions", root / "preds.parquet",
                     "--data", root / "arc", "--json", check=True)
    summary = json.loads(result.stdout)
    assert len(summary["sources"]) == 2 and summary["predictions"] == 2 * len(small_arc[2])
    assert summary["score"] == pytest.approx(2 / 3)
