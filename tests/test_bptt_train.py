"""Training with a gradient depth and depth schedules (issue 24): a schedule switches at the
steps its fractions name, a run resumed across a switch is the uninterrupted run, a checkpoint
is evaluated at the depth it was trained at, bad values are usage errors naming the key, and the
peak memory is recorded (growing with the gradient depth). 1 vs 2 processes: test_train_dist.py."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import assert_one_line_error, run_hrm
from sudoku4_data import write_sudoku4
from hrm.eval.inference import evaluate, load_for_inference
from hrm.builders.dataset import open_dataset
from hrm.common.distributed import DistInfo
from hrm.models.checkpoints import load_checkpoint
from hrm.train.config import load_config, resume_config
from hrm.train.loop import train

pytestmark = pytest.mark.usefixtures("single_thread")

# 48 train puzzles in batches of 8 for 4 epochs: 24 scheduled steps.
CONFIG = ["global_batch_size=8", "epochs=4", "eval_interval=4", "arch.hidden_size=16", "arch.num_heads=2",
          "arch.H_layers=1", "arch.L_layers=1", "arch.halt_max_steps=2", "arch.puzzle_emb_ndim=16",
          "log_interval=1", "eval_batch_size=8", "lr=1e-3", "lr_warmup_steps=2", "device=cpu",
          "keep_checkpoints=0", "compile=false"]
# bptt: 0.3 x 24 = 7.2 -> from step 7 (the 8th step trains at "all"); H_cycles: 0.5 x 24 = 12.
SCHEDULE = ["arch.bptt=[[0, 1], [0.3, all]]", "arch.H_cycles=[[0, 1], [0.5, 2]]"]
BPTT_SWITCH, H_SWITCH = 7, 12


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_sudoku4(tmp_path_factory.mktemp("bptt") / "s4", train_size=48, test_size=16, blanks=6,
                         identifiers=6)


def config(data: Path, *extra: str):
    return load_config(None, [*CONFIG, f"data_path={data}", *extra])


def records(run: Path, split: str = "train", drop: tuple[str, ...] = ()) -> list[dict]:
    drop = ("time", "examples_per_s", "peak_memory", *drop)  # of the machine, not of the run
    return [{k: v for k, v in record.items() if k not in drop}
            for record in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if record["split"] == split]


@pytest.fixture(scope="module")
def scheduled_run(data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("scheduled") / "run"
    train(config(data, *SCHEDULE, "max_steps=14"), run)
    return run


def test_a_schedule_switches_at_the_steps_its_fractions_name(scheduled_run, data, tmp_path):
    lines = records(scheduled_run)
    assert [r["step"] for r in lines] == list(range(1, 15))
    # A line's step counts the steps done; the step after BPTT_SWITCH done is the first at "all".
    assert [r["arch.bptt"] for r in lines] == [1] * BPTT_SWITCH + ["all"] * (14 - BPTT_SWITCH)
    assert [r["arch.H_cycles"] for r in lines] == [1] * H_SWITCH + [2] * (14 - H_SWITCH)
    assert all("arch.L_cycles" not in r for r in lines)  # only the scheduled keys

    # Until the switch the run is a run at the first stage's fixed depth, and then it is not.
    fixed = tmp_path / "fixed"
    train(config(data, "arch.bptt=1", "arch.H_cycles=1", f"max_steps={BPTT_SWITCH + 3}"), fixed)
    same_keys = ("arch.bptt", "arch.H_cycles")
    fixed_lines, scheduled_lines = records(fixed, drop=same_keys), records(scheduled_run, drop=same_keys)
    assert fixed_lines[:BPTT_SWITCH] == scheduled_lines[:BPTT_SWITCH]
    # (the loss of the first step at "all" is computed before its backward: the next ones differ)
    assert fixed_lines[BPTT_SWITCH + 1:] != scheduled_lines[BPTT_SWITCH + 1:BPTT_SWITCH + 3]


def test_the_switch_is_logged(data, tmp_path, capsys):
    train(config(data, *SCHEDULE, f"max_steps={BPTT_SWITCH + 1}", "log_interval=5"), tmp_path / "run")
    err = capsys.readouterr().err
    assert "depth schedule: arch.bptt: 1 from step 0, all from step 7 (of 24 scheduled steps)" in err
    assert "step 7: depth schedule: arch.bptt 1 -> all" in err
    # The log line before a switch holds only the old stage's steps (flushed at the switch).
    assert [(r["step"], r["arch.bptt"]) for r in records(tmp_path / "run")] == [(5, 1), (7, 1), (8, "all")]


@pytest.mark.parametrize("stop", [BPTT_SWITCH - 1, BPTT_SWITCH, H_SWITCH],
                         ids=["before a switch", "at a switch", "at a switch and an evaluation"])
def test_a_run_resumed_across_a_switch_is_the_uninterrupted_run(data, tmp_path, stop):
    # eval_interval 1: an evaluation every 6 steps, one of them at H_SWITCH, where the resumed run
    # evaluates before its first step, at the depth the weights were trained at (H_cycles 1).
    # log_interval 3: the switch at 7 flushes a window; the stops are where a line is due anyway
    # (a run stopped elsewhere logs its last steps early, with or without a schedule).
    run, whole = tmp_path / "run", tmp_path / "whole"
    train(config(data, *SCHEDULE, f"max_steps={stop}", "log_interval=3", "eval_interval=1"), run)
    train(resume_config(run, ["max_steps=14"]), run, resume=True)
    train(config(data, *SCHEDULE, "max_steps=14", "log_interval=3", "eval_interval=1"), whole)
    assert records(run) == records(whole)
    # Tests: the early stop adds an evaluation at `stop`, the same as the one at `stop` if any.
    resumed_tests, whole_tests = records(run, "test"), records(whole, "test")
    assert [r for r in resumed_tests if r["step"] != stop] == [r for r in whole_tests if r["step"] != stop]
    at_stop = [r for r in resumed_tests if r["step"] == stop] + [r for r in whole_tests if r["step"] == stop]
    assert all(r == at_stop[0] for r in at_stop)
    assert [r["step"] for r in whole_tests] == [6, 12, 14]
    a, b = load_checkpoint(whole), load_checkpoint(run)
    assert a["step"] == b["step"] == 14 and a["depth"] == b["depth"] == {"bptt": "all", "H_cycles": 2, "L_cycles": 2}
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key


def test_a_checkpoint_is_evaluated_at_the_depth_it_was_trained_at(data, tmp_path):
    run = tmp_path / "run"
    train(config(data, *SCHEDULE, "max_steps=6"), run)  # the first stage: H_cycles 1
    model, saved = load_for_inference(run, device="cpu")
    assert (model.config.H_cycles, model.config.bptt) == (1, 1)
    logged = json.loads((run / "eval" / "step_6.json").read_text())
    dist = DistInfo(0, 1, 0, torch.device("cpu"))
    again = evaluate(model, open_dataset(data).split("test"), 8, dist)
    assert again["exact_accuracy"] == logged["exact_accuracy"]
    assert again["accuracy"] == pytest.approx(logged["accuracy"])


@pytest.mark.parametrize("overrides,message", [
    (["arch.bptt=5"], "arch.bptt must be 'all' or an integer from 1 to 4"),
    (["arch.bptt=[[0, 1], [0.5, 2], [0.5, 3]]"], "arch.bptt: schedule fractions must increase"),
    (["arch.bptt=4", "arch.H_cycles=[[0, 2], [0.5, 1]]"], "arch.bptt (from fraction 0.5 of training)"),
    (["arch.name=transformer", "arch.bptt=2"], "arch.bptt must be 1 or 'all'"),
], ids=["longer than the segment", "not increasing", "longer than a later stage", "transformer"])
def test_bad_depths_exit_2_with_one_line_naming_the_key(data, tmp_path, overrides, message):
    result = run_hrm("train", "--data", data, "--out", tmp_path / "run", *CONFIG, *overrides)
    assert_one_line_error(result, message)
    assert result.returncode == 2 and not (tmp_path / "run").exists()


def test_peak_memory_is_recorded_and_never_decreases(scheduled_run):
    peaks = [json.loads(line)["peak_memory"] for line in (scheduled_run / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["split"] == "train"]
    assert len(peaks) == 14 and all(isinstance(p, int) and p > 0 for p in peaks)
    assert peaks == sorted(peaks)


def test_the_peak_is_this_process_s_own_not_its_parent_s():
    """Linux keeps getrusage's ru_maxrss across exec: a run started by a process that once held
    ~1 GB would report at least that. The peak read is the child's own (well below), and a tensor
    this process allocates raises its own."""
    import subprocess
    import sys

    from hrm.train.resources import peak_memory

    cpu = torch.device("cpu")
    ballast = torch.ones(256 << 20, dtype=torch.float32)  # 1 GiB, touched
    parent = peak_memory(cpu)
    assert parent >= 1 << 30
    child = subprocess.run([sys.executable, "-c", "import torch; from hrm.train.resources import peak_memory; "
                            "print(peak_memory(torch.device('cpu')))"], capture_output=True, text=True, check=True)
    assert int(child.stdout) < parent - (512 << 20)
    del ballast


def test_backpropagating_through_the_whole_segment_needs_more_memory(data, tmp_path):
    """The same preset at bptt 1 and all, each in its own process (the peak is per process): 3 x 3
    cycles of 64 sequences x 17 positions at hidden 64 keep ~10 more blocks' activations, ~80 MB
    by the estimate, far above what else differs between the two processes."""
    preset = [*CONFIG, "global_batch_size=64", "arch.hidden_size=64", "arch.H_cycles=3", "arch.L_cycles=3",
              "max_steps=3", "log_interval=3", "epochs=40"]
    peaks = {}
    for bptt in (1, "all"):
        run = tmp_path / f"bptt_{bptt}"
        run_hrm("train", "--data", data, "--out", run, *preset, f"arch.bptt={bptt}", check=True, process=True)
        first_line = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
        peaks[bptt] = first_line["peak_memory"]
    assert peaks["all"] > peaks[1] + 30 * 2**20, peaks


def test_init_from_takes_the_gradient_depth_from_the_config():
    """bptt changes how the weights are trained, not their shapes: a run started from a checkpoint
    (also one of an hrm older than the key) backpropagates as its own config says."""
    from hrm.train.config import arch_defaults
    from hrm.train.init_from import init_arch

    pretrained = arch_defaults("hrm") | {"hidden_size": 16, "puzzle_emb_ndim": 16}
    older = {k: v for k, v in pretrained.items() if k != "bptt"}
    for checkpoint_arch in (pretrained, older):
        assert init_arch(checkpoint_arch, arch_defaults("hrm") | {"bptt": "all"})["bptt"] == "all"
        assert init_arch(checkpoint_arch, arch_defaults("hrm") | {"hidden_size": 32})["hidden_size"] == 16
    assert init_arch(pretrained | {"bptt": 2}, arch_defaults("hrm"))["bptt"] == 2  # the config left it at its default
