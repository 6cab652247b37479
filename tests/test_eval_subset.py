"""`hrm eval --max-items N --max-versions M --seed S`: a seeded subset of tasks/puzzles and of
their versions, scored only there and recorded as `subset` (issue 17)."""
from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from hrm.builders.dataset import open_dataset
from hrm.eval.predictions import predictions_dataset_signature
from hrm.eval.run import evaluate
from hrm.train.config import load_config
from hrm.train.loop import train
from sudoku4_data import write_sudoku4
from tests.conftest import run_hrm
from tests.eval_helpers import answer_rows, random_arc_tasks, write_arc_dataset, write_table

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def arc(tmp_path_factory):
    """6 tasks x 4 versions; the table answers the even tasks right in every version and the odd
    ones wrong, so pass@1 over any set of tasks is the share of even tasks in it."""
    tasks = random_arc_tasks(np.random.default_rng(3), num_tasks=6, versions=4)
    root = tmp_path_factory.mktemp("subset")
    write_arc_dataset(root / "arc", tasks)
    rows = answer_rows(tasks, lambda t, truth: truth if t % 2 == 0 else (truth + 1) % 10)
    write_table(root / "preds.parquet", rows, 900, signature=predictions_dataset_signature(open_dataset(root / "arc")))
    return root, tasks


def test_subset_scores_only_the_drawn_tasks_and_versions(arc, tmp_path):
    root, tasks = arc
    summary = evaluate([], root / "arc", predictions=[root / "preds.parquet"], vote_k=1, max_items=3,
                       max_versions=2, seed=0, out=tmp_path / "eval")
    assert summary["subset"] == {"items": 3, "of_items": 6, "max_versions": 2, "seed": 0}
    names = pq.read_table(tmp_path / "eval" / "results.parquet").column("name").to_pylist()
    assert len(names) == 3 == summary["groups"]
    index = {task.name: t for t, task in enumerate(tasks)}
    chosen = [index[name] for name in names]
    # by hand: 2 versions of each chosen task, each version holding all its test pairs
    assert summary["predictions"] == sum(2 * len(tasks[t].test_outputs) for t in chosen)
    assert summary["test_inputs"] == sum(len(tasks[t].test_outputs) for t in chosen)
    assert summary["pass@1"] == pytest.approx(np.mean([t % 2 == 0 for t in chosen]))
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["subset"] == summary["subset"]
    # seeded: the same seed draws the same tasks, the seeds together reach other ones
    again = evaluate([], root / "arc", predictions=[root / "preds.parquet"], vote_k=1, max_items=3,
                     max_versions=2, seed=0)
    assert again == {**summary, "sources": again["sources"]}
    drawn = set()
    for seed in range(5):
        out = tmp_path / f"s{seed}"
        evaluate([], root / "arc", predictions=[root / "preds.parquet"], max_items=3, seed=seed, out=out)
        drawn.add(tuple(sorted(pq.read_table(out / "results.parquet").column("name").to_pylist())))
    assert len(drawn) > 1


def test_without_subset_options_everything_is_scored_and_subset_is_null(arc):
    root, tasks = arc
    summary = evaluate([], root / "arc", predictions=[root / "preds.parquet"], vote_k=1)
    assert summary["subset"] is None and summary["groups"] == 6
    assert summary["pass@1"] == pytest.approx(0.5)
    # a subset that asks for everything is everything
    assert evaluate([], root / "arc", predictions=[root / "preds.parquet"], max_items=6)["subset"] is None


def test_cli_reports_the_subset(arc):
    root, _ = arc
    result = run_hrm("eval", "--predictions", root / "preds.parquet", "--data", root / "arc", "--max-items", "2",
                     "--json", check=True)
    assert json.loads(result.stdout)["subset"]["items"] == 2 and "scoring a subset: 2 of 6" in result.stderr
    text = run_hrm("eval", "--predictions", root / "preds.parquet", "--data", root / "arc", "--max-items", "2",
                   check=True).stdout
    assert "a subset: 2 of 6" in text


def test_model_predicts_exactly_the_subset_rows(tmp_path):
    """A model run over a subset predicts the drawn rows and nothing else, and those predictions
    are the full run's for the same rows."""
    data = write_sudoku4(tmp_path / "s4", train_size=60, test_size=30, blanks=6)
    config = load_config(None, [f"data_path={data}", "global_batch_size=16", "arch.hidden_size=16",
                                "arch.num_heads=2", "arch.H_layers=1", "arch.L_layers=1", "arch.halt_max_steps=2",
                                "arch.puzzle_emb_ndim=0", "max_steps=2", "device=cpu"])
    train(config, tmp_path / "run")
    full = evaluate([tmp_path / "run"], data, predictions=[tmp_path / "full.parquet"], batch_size=8, device="cpu")
    part = evaluate([tmp_path / "run"], data, predictions=[tmp_path / "part.parquet"], batch_size=8, device="cpu",
                    max_items=7, seed=2)
    assert full["subset"] is None and part["subset"] == {"items": 7, "of_items": 30, "max_versions": None, "seed": 2}
    whole = pq.read_table(tmp_path / "full.parquet").to_pydict()
    subset = pq.read_table(tmp_path / "part.parquet").to_pydict()
    assert len(subset["example"]) == 7 == part["predictions"]
    by_row = dict(zip(whole["example"], whole["prediction"]))
    assert all(by_row[row] == tokens for row, tokens in zip(subset["example"], subset["prediction"]))


@pytest.mark.parametrize("max_items, max_versions", [(None, None), (3, None), (4, 2), (None, 3)])
def test_versions_per_group_is_the_mean_over_the_scored_items(tmp_path, max_items, max_versions):
    """Tasks of 1, 2, 3, 4, 4 and 1 versions: the protocol's versions_per_group is, by hand, the
    mean of min(versions, M) over the tasks the subset drew (named in results.parquet)."""
    versions = [1, 2, 3, 4, 4, 1]
    tasks = random_arc_tasks(np.random.default_rng(5), num_tasks=6, versions=4)
    for task, count in zip(tasks, versions):
        task.versions = task.versions[:count]
    write_arc_dataset(tmp_path / "arc", tasks)
    rows = answer_rows(tasks, lambda t, truth: truth)
    write_table(tmp_path / "preds.parquet", rows, 900,
                signature=predictions_dataset_signature(open_dataset(tmp_path / "arc")))
    summary = evaluate([], tmp_path / "arc", predictions=[tmp_path / "preds.parquet"], max_items=max_items,
                       max_versions=max_versions, seed=1, out=tmp_path / "eval")
    names = pq.read_table(tmp_path / "eval" / "results.parquet").column("name").to_pylist()
    index = {task.name: t for t, task in enumerate(tasks)}
    kept = [min(versions[index[name]], max_versions or 4) for name in names]
    assert len(names) == (max_items or 6)
    assert summary["protocol"]["versions_per_group"] == pytest.approx(np.mean(kept))


def test_one_version_per_puzzle_reads_as_one(tmp_path):
    tasks = random_arc_tasks(np.random.default_rng(6), num_tasks=5, versions=1)
    write_arc_dataset(tmp_path / "arc", tasks)
    write_table(tmp_path / "preds.parquet", answer_rows(tasks, lambda t, truth: truth), 900,
                signature=predictions_dataset_signature(open_dataset(tmp_path / "arc")))
    result = run_hrm("eval", "--predictions", tmp_path / "preds.parquet", "--data", tmp_path / "arc",
                     "--max-items", "2", check=True)
    assert "1 version per puzzle" in result.stdout, result.stdout


def test_protocol_line_names_the_subset_in_words(arc):
    from hrm.eval.run import format_protocol

    root, _ = arc
    summary = evaluate([], root / "arc", predictions=[root / "preds.parquet"], max_items=3, max_versions=2, seed=4)
    line = format_protocol(summary["protocol"])
    assert "(a subset: 3 of 6, at most 2 versions each, seed 4)" in line and "{" not in line, line
    assert "; 2 versions per puzzle;" in line
