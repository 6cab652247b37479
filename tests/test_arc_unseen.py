"""Unseen ARC tasks (issue 12): solution-free builds, `hrm inspect` and `hrm eval` on them,
`--init-from` onto other identifiers, the time budget, the table-size line. Oracles: the fixture
JSON read with json/numpy (tests/arc_oracle), hand computations of means and sizes."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from hrm.common import format_bytes
from hrm.builders.arc import build_arc
from hrm.builders.dataset import open_dataset
from hrm.models.checkpoints import latest_checkpoint, load_checkpoint
from hrm.train.checkpoint import save_checkpoint
from hrm.train.config import load_config
from hrm.train.init_from import init_weights, match_puzzle_rows
from hrm.train.loop import train
from tests.arc_oracle import INVERSE, locate
from tests.conftest import REPO, assert_one_line_error, run_hrm

FIXTURES = REPO / "tests" / "fixtures" / "arc"
KAGGLE = FIXTURES / "kaggle"
TINY = ["global_batch_size=8", "arch.hidden_size=16", "arch.num_heads=2", "arch.H_layers=1", "arch.L_layers=1",
        "arch.H_cycles=1", "arch.L_cycles=1", "arch.halt_max_steps=2", "arch.puzzle_emb_ndim=16",
        "lr_warmup_steps=1", "log_interval=1", "device=cpu", "puzzle_emb_lr=0.1"]

pytestmark = pytest.mark.usefixtures("single_thread")


def _challenges_only(folder: Path, subset: str = "evaluation") -> Path:
    """A folder holding the fixture's challenges of `subset` and no solutions file."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(KAGGLE / f"fx_{subset}_challenges.json", folder)
    return folder


def _decode(tokens: np.ndarray, transform: int, colour_map: np.ndarray) -> np.ndarray:
    grid, _, _ = locate(tokens)
    return np.argsort(colour_map)[INVERSE[transform](grid)]


@pytest.fixture(scope="module")
def unseen(tmp_path_factory) -> Path:
    """The fixture's evaluation challenges built with --no-solutions (no solutions file)."""
    root = tmp_path_factory.mktemp("unseen")
    build_arc(root / "data", inputs=[str(_challenges_only(root / "in"))], subsets=["evaluation"],
              test_set="evaluation", aug=3, no_solutions=True)
    return root / "data"


def test_solution_free_build_holds_every_demonstration_version_and_unscored_test_inputs(unseen):
    challenges = json.loads((KAGGLE / "fx_evaluation_challenges.json").read_text())
    dataset = open_dataset(unseen)
    names = dataset.identifiers()
    train_set, test_set = dataset.split("train").set(), dataset.split("test").set()
    assert dataset.split("test").attrs["has_solutions"] is False and dataset.split("test").has_solutions is False
    assert dataset.attrs["builder"]["no_solutions"] is True
    for split, puzzle_set, kind in (("train", train_set, "train"), ("test", test_set, "test")):
        inputs, labels = puzzle_set.rows(0, puzzle_set.num_examples)
        pi, gi, ids = puzzle_set.puzzle_indices, puzzle_set.group_indices, puzzle_set.puzzle_identifiers
        transforms, maps = puzzle_set.field("aug_dihedral"), puzzle_set.field("aug_colour_map")
        seen = set()
        for g in range(puzzle_set.num_groups):
            task = str(names[ids[gi[g]]])
            seen.add(task)
            pairs = challenges[task][kind]
            assert gi[g + 1] - gi[g] == 4  # identity + 3 versions
            for p in range(gi[g], gi[g + 1]):
                rows = range(pi[p], pi[p + 1])
                assert len(rows) == len(pairs)
                for row, pair in zip(rows, pairs):
                    decoded = _decode(inputs[row], int(transforms[p]), maps[p])
                    assert np.array_equal(decoded, np.array(pair["input"]))
                    if split == "train":  # every demonstration pair, output included
                        assert np.array_equal(_decode(labels[row], int(transforms[p]), maps[p]),
                                              np.array(pair["output"]))
        assert seen == set(challenges)
        if split == "test":
            assert not labels.any(), "a test input without solution has no scored position"
            assert puzzle_set.num_examples == 4 * sum(len(t["test"]) for t in challenges.values())
    info = json.loads(run_hrm("inspect", unseen, "--json", check=True).stdout)
    assert info["splits"]["test"]["has_solutions"] is False and info["splits"]["train"]["has_solutions"] is True
    assert "no solutions" in run_hrm("inspect", unseen, check=True).stdout


def test_without_the_option_the_same_input_fails_as_before(tmp_path):
    folder = _challenges_only(tmp_path / "in")
    result = run_hrm("build-data", "arc", "--out", tmp_path / "out", "--input", folder, "--subsets", "evaluation",
                     "--test-set", "evaluation", "--aug", "1")
    assert_one_line_error(result, "fx_evaluation_challenges.json", "missing solutions file",
                          "fx_evaluation_solutions.json")
    assert not (tmp_path / "out").exists()


def test_per_task_json_without_outputs_builds_with_no_solutions(tmp_path):
    folder = tmp_path / "tasks"
    shutil.copytree(FIXTURES / "tasks" / "evaluation", folder / "evaluation")
    for path in (folder / "evaluation").glob("*.json"):
        task = json.loads(path.read_text())
        for pair in task["test"]:
            del pair["output"]
        path.write_text(json.dumps(task))
    summary = build_arc(tmp_path / "out", inputs=[str(folder)], subsets=["evaluation"], test_set="evaluation",
                        aug=0, no_solutions=True)
    assert summary["has_solutions"] is False and summary["test_examples"] == 3
    test = open_dataset(tmp_path / "out").split("test").set()
    assert not test.rows(0, test.num_examples)[1].any()


def _pretrain(tmp_path: Path) -> Path:
    """A few steps on the fixture's training + evaluation tasks, so that the table's rows differ."""
    data = tmp_path / "pre_data"
    build_arc(data, inputs=[str(KAGGLE)], subsets=["training", "evaluation"], test_set="evaluation", aug=2)
    run = tmp_path / "pre_run"
    train(load_config(None, [*TINY, f"data_path={data}", "epochs=2", "eval_interval=2"]), run)
    return run


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    return _pretrain(tmp_path_factory.mktemp("pre"))


def test_init_from_matches_rows_by_name_and_starts_new_rows_at_the_mean(pretrained, unseen):
    state = load_checkpoint(pretrained)
    old_names = list(state["identifiers"])
    old_table = state["model"]["inner.puzzle_emb.weights"].double().numpy()
    assert np.abs(old_table[1:]).sum() > 0, "pretraining moved some rows"
    new_names = [str(n) for n in open_dataset(unseen).identifiers()]
    matched = [n for n in new_names if n in old_names]
    assert "e_one" in matched and len(matched) < len(new_names), "some names shared, some new"
    for mode in ("mean", "zero"):
        arch, weights = init_weights(pretrained, open_dataset(unseen), 8, new_rows=mode)
        table = weights["inner.puzzle_emb.weights"].double().numpy()
        assert table.shape == (len(new_names), old_table.shape[1])
        # hand computation: the mean over the pretrained rows of real identifiers (id 0 is the blank)
        hand_mean = np.sum(old_table[1:], axis=0) / (len(old_names) - 1)
        for new_id, name in enumerate(new_names):
            if name in old_names:
                assert np.array_equal(table[new_id], old_table[old_names.index(name)]), name
            else:
                expected = hand_mean if mode == "mean" else np.zeros_like(hand_mean)
                np.testing.assert_allclose(table[new_id], expected, rtol=1e-6, atol=1e-9)
        for key, value in state["model"].items():
            if key != "inner.puzzle_emb.weights":
                assert torch.equal(weights[key], value), key
        assert arch == state["config"]["arch"]


def test_match_puzzle_rows_by_hand():
    table = torch.tensor([[0.0, 0.0], [1.0, 2.0], [3.0, 6.0], [5.0, 1.0]])
    result, matched = match_puzzle_rows(table, ["<blank>", "a", "b", "c"], ["<blank>", "c", "x", "a", "y"])
    assert matched == 3
    assert result.tolist() == [[0, 0], [5, 1], [3, 3], [1, 2], [3, 3]]  # mean of rows 1-3: (9/3, 9/3)


def test_ttt_run_logs_counts_and_a_shape_mismatch_is_one_line(pretrained, unseen, tmp_path):
    result = run_hrm("train", "--data", unseen, "--out", tmp_path / "ttt", "--init-from", pretrained, "--json",
                     *TINY, "epochs=4", "eval_interval=4", "arch.halt_max_steps=3", check=True)
    new_names = [str(n) for n in open_dataset(unseen).identifiers()]
    old_names = list(load_checkpoint(pretrained)["identifiers"])
    matched = sum(n in old_names for n in new_names)
    assert f"{matched} of {len(new_names)} rows matched by identifier name, {len(new_names) - matched} new" \
        in result.stderr
    assert "puzzle-embedding table:" in result.stderr
    final = json.loads(result.stdout)
    assert final["split"] == "train", "a split without solutions is not evaluated during training"
    ttt = load_checkpoint(tmp_path / "ttt")
    assert ttt["config"]["arch"]["halt_max_steps"] == 3, "a runtime arch key of the config wins"
    assert ttt["config"]["arch"]["hidden_size"] == 16
    # eval on the solution-free split: predictions and a full submission, nothing scored, exit 0
    out = run_hrm("eval", "--checkpoint", tmp_path / "ttt", "--data", unseen, "--submission", tmp_path / "s.json",
                  "--out", tmp_path / "eval", "--json", check=True)
    summary = json.loads(out.stdout)
    assert summary["scored"] is False and summary["score"] is None and summary["exact_accuracy"] is None
    assert (tmp_path / "eval" / "predictions.parquet").is_file()
    challenges = json.loads((KAGGLE / "fx_evaluation_challenges.json").read_text())
    submission = json.loads((tmp_path / "s.json").read_text())
    assert set(submission) == set(challenges)
    for task, entries in submission.items():
        assert len(entries) == len(challenges[task]["test"])
        for entry in entries:
            assert set(entry) == {"attempt_1", "attempt_2"}
            for grid in entry.values():
                array = np.array(grid)
                assert array.ndim == 2 and 1 <= min(array.shape) and max(array.shape) <= 30
                assert ((array >= 0) & (array <= 9)).all()
    table = run_hrm("eval", "--predictions", tmp_path / "eval" / "predictions.parquet", "--data", unseen,
                    check=True).stdout
    assert "nothing scored" in table and "%" not in table
    # a checkpoint of other data (seq_len 81, as sudoku): one line, before any training
    state = load_checkpoint(pretrained)
    state["dataset"] = {**state["dataset"], "seq_len": 81, "task": "sudoku"}
    state.pop("path")
    save_checkpoint(tmp_path / "other.pt", state)
    bad = run_hrm("train", "--data", unseen, "--out", tmp_path / "bad", "--init-from", tmp_path / "other.pt", *TINY)
    assert_one_line_error(bad, "init_from", "sequence length is 81", "900")
    state["dataset"] = {**state["dataset"], "seq_len": 900, "vocab_size": 11}
    save_checkpoint(tmp_path / "other.pt", state)
    bad = run_hrm("train", "--data", unseen, "--out", tmp_path / "bad", "--init-from", tmp_path / "other.pt", *TINY)
    assert_one_line_error(bad, "init_from", "vocabulary size is 11", "12")


def test_time_budget_stops_cleanly_with_a_checkpoint(unseen, tmp_path, monkeypatch):
    from hrm.train import loop

    clock = [0.0]
    monkeypatch.setattr(loop.time, "monotonic", lambda: clock[0])
    real_step = loop.train_step

    def timed_step(t, batch):  # every step "takes" 1 s of wall clock
        clock[0] += 1.0
        real_step(t, batch)

    monkeypatch.setattr(loop, "train_step", timed_step)
    config = load_config(None, [*TINY, f"data_path={unseen}", "epochs=1000", "eval_interval=1000",
                                "time_budget=7.5", "log_interval=2"])
    result = train(config, tmp_path / "run")
    # checked at log intervals: the first check at or past 7.5 s is step 8
    assert result["step"] == 8
    assert latest_checkpoint(tmp_path / "run").name == "step_8.pt"
    assert load_checkpoint(tmp_path / "run")["step"] == 8


def test_budget_eta_says_which_ends_first():
    from hrm.train.loop import _budget_postfix

    # 10 steps in 10 s: 90 steps left need 90 s; 30 s of budget left -> the budget ends first at ~step 40
    assert _budget_postfix(130.0, 0, 10, 100, 90.0, now=100.0) == "budget stops at ~step 40/100 in 00:00:30"
    assert _budget_postfix(400.0, 0, 10, 100, 90.0, now=100.0) == "done in 00:01:30, budget left 00:05:00"


def test_table_size_line_by_hand():
    from hrm.models.registry import build_model
    from hrm.train.table_size import table_and_checkpoint_bytes, table_size_line

    arch = load_config(None, TINY).arch
    model = build_model(arch, seq_len=900, vocab_size=12, num_puzzle_identifiers=1000, batch_size=8)
    sizes = table_and_checkpoint_bytes(model, ema=False)
    assert sizes["table"] == 1000 * 16 * 4
    dense = sum(p.numel() for p in model.parameters()) * 4
    buffers = sum(b.numel() * b.element_size() for name, b in model.state_dict().items()
                  if name not in dict(model.named_parameters()))
    assert sizes["checkpoint"] == buffers + 3 * dense
    # the ACT carry of 8 slots: z_high and z_low, 8 x (900 + 1 puzzle position) x 16 float32 each
    carry = table_and_checkpoint_bytes(model, ema=False, carry_bytes=2 * 8 * 901 * 16 * 4)
    assert carry["checkpoint"] - sizes["checkpoint"] == 2 * 8 * 901 * 16 * 4
    line = table_size_line(model, 1000)
    assert "1,000 identifiers x 16 = 62.5 KiB float32" in line
    # ARC-AGI-1 with 1000 augmentations: ~876k rows of 512 floats are ~1.8 GB
    assert 876_406 * 512 * 4 / 1e9 == pytest.approx(1.79, abs=0.01)
    assert format_bytes(876_406 * 512 * 4) == "1.7 GiB"  # 1.67 GiB
    assert [format_bytes(n) for n in (512, 1024, 150 * 2**20)] == ["512 B", "1.0 KiB", "150 MiB"]


def test_show_predictions_without_solutions_marks_nothing(unseen, tmp_path):
    """No truth to compare: the attempts are shown unmarked, no truth panel, and the note (text,
    JSON and the PNG's figure alike) says that there is no solution."""
    from hrm.eval.predictions import predictions_dataset_signature
    from tests.eval_helpers import write_table

    test_set = open_dataset(unseen).split("test").set("all")
    inputs, _ = test_set.rows(0, test_set.num_examples)
    # every version answers its own input grid (a valid grid: the attempts vote)
    write_table(tmp_path / "p.parquet", [(row, inputs[row], 0.5) for row in range(len(inputs))], inputs.shape[1],
                signature=predictions_dataset_signature(open_dataset(unseen)))
    shown = json.loads(run_hrm("show", "--predictions", tmp_path / "p.parquet", "--data", unseen, "--json",
                               "--png", tmp_path / "p.png", check=True).stdout)
    panels = [panel for row in shown["rows"] for panel in row]
    assert panels[0]["title"].endswith("input") and len(panels) > 1
    assert all(panel["title"] != "truth" and "wrong_cells" not in panel for panel in panels)
    assert not any("right" in panel["title"] for panel in panels)
    assert shown["notes"][0].startswith("no solution to compare: the test split was built without solutions")
    assert (tmp_path / "p.png").is_file()
    text = run_hrm("show", "--predictions", tmp_path / "p.parquet", "--data", unseen, check=True).stdout
    assert "no solution to compare" in text and "solved" not in text and "truth" not in text
