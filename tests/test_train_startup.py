"""What `hrm train` checks and says before its first step (issue 17): the model line, the memory
estimate and its refusal, the multi-GPU recipe warning, CPU threads; resuming a run without a
checkpoint or with a damaged latest one; one line per stop request, and a second one stops."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import torch

from hrm.common import HrmError
from conftest import REPO, assert_one_line_error, run_hrm, wait_for_lines
from sudoku4_data import write_sudoku4
from hrm.train import loop as loop_module
from hrm.models.checkpoints import list_checkpoints, load_checkpoint
from hrm.train.config import arch_defaults, load_config
from hrm.common.distributed import DistInfo
from hrm.train.loop import train
from hrm.common import distributed
from hrm.common.distributed import idle_cores, resolve_threads
from hrm.train.resources import count_model, estimate_memory, graph_blocks, meta_model
from tests.train_helpers import TINY, tiny


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_sudoku4(tmp_path_factory.mktemp("startup") / "s4", train_size=200, test_size=40, blanks=6)


# ----------------------------------------------------------------------------- model and memory


def test_parameter_count_matches_a_hand_count():
    """HRM with hidden 16, 1 H + 1 L block, vocab 6, seq 16, puzzle embedding 16 wide over 5 rows:
    counted by hand from the architecture (SPEC 4), against what count_model reads off the model."""
    arch = load_config(None, TINY).arch
    counts = count_model(meta_model(arch, {"seq_len": 16, "vocab_size": 6, "num_puzzle_identifiers": 5}, 16), 16)
    hidden, vocab, inner = 16, 6, 256  # SwiGLU width: round(4 * 16 * 2/3) = 43 -> next multiple of 256
    block = hidden * 3 * hidden + hidden * hidden + hidden * 2 * inner + inner * hidden
    heads = vocab * hidden + hidden * vocab + (hidden * 2 + 2)  # token embedding, lm_head, q_head (+bias)
    assert counts.parameters == 2 * block + heads
    assert (counts.puzzle_rows, counts.puzzle_dim, counts.blocks, counts.mlp_width) == (5, 16, 2, 256)
    assert counts.positions == 16 + 1  # one puzzle-embedding position (16 / hidden 16)


def test_memory_estimate_sums_its_parts_by_hand():
    counts = types.SimpleNamespace(parameters=1000, puzzle_rows=10, puzzle_dim=8, blocks=2, hidden_size=4,
                                   mlp_width=256, positions=5)
    estimate = estimate_memory(counts, local_batch=3, vocab_size=7, ema=True, data_cache=100)
    assert estimate.weights == 4000
    assert estimate.optimizer == 4000 * 4                      # gradient, two moments, EMA
    assert estimate.puzzle_table == (10 + 2 * 3) * 8 * 4       # table + the batch's rows and gradients
    tokens = 3 * 5
    assert estimate.activations == tokens * (13 * 4 + 4 * 256) * 3 * 4 + tokens * 7 * (4 + 24)
    assert estimate.total == 4000 + 16000 + 512 + estimate.activations + 100
    # TRM backpropagates through L_cycles + 1 applications of its blocks (models/trm.py)
    trm = estimate_memory(counts, local_batch=3, vocab_size=7, ema=False,
                          grad_blocks=graph_blocks(arch_defaults("trm") | {"L_cycles": 6}))
    assert trm.activations == tokens * (13 * 4 + 4 * 256) * (2 * 7 + 1) * 4 + tokens * 7 * (4 + 24)


def test_activations_kept_grow_with_the_gradient_depth():
    """Block applications kept for the backward pass, counted by hand: HRM with H_cycles 2 x
    L_cycles 3 and 1 L + 2 H layers runs L L L H L L L H; bptt k keeps the last k L updates
    and the H updates after one of them."""
    hrm = arch_defaults("hrm") | {"H_cycles": 2, "L_cycles": 3, "L_layers": 1, "H_layers": 2}
    by_hand = {1: 1 + 2, 2: 2 + 2, 3: 3 + 2, 4: 4 + 2 * 2, "all": 6 + 2 * 2}
    assert {bptt: graph_blocks(hrm | {"bptt": bptt}) for bptt in by_hand} == by_hand
    # A schedule needs the memory of its deepest stage (here 3 x 3 cycles at bptt all).
    schedule = hrm | {"H_cycles": [[0, 1], [0.5, 3]], "bptt": [[0, 1], [0.8, "all"]]}
    assert graph_blocks(schedule) == 9 * 1 + 3 * 2
    trm = arch_defaults("trm") | {"H_cycles": 3, "L_cycles": 4, "L_layers": 2}
    assert [graph_blocks(trm | {"bptt": b}) for b in (1, 2, "all")] == [5 * 2, 2 * 5 * 2, 3 * 5 * 2]
    assert graph_blocks(arch_defaults("transformer") | {"H_layers": 3, "L_layers": 3}) == 6
    counts = types.SimpleNamespace(parameters=0, puzzle_rows=0, puzzle_dim=0, blocks=3, hidden_size=4,
                                   mlp_width=8, positions=5)
    kept = [estimate_memory(counts, local_batch=2, vocab_size=3, ema=False,
                            grad_blocks=graph_blocks(hrm | {"bptt": b})).activations for b in by_hand]
    assert kept == sorted(kept) and len(set(kept)) == len(kept)


def test_first_log_line_names_the_model_and_the_memory_line_follows(data, tmp_path):
    result = run_hrm("train", "--data", data, "--out", tmp_path / "run", *TINY, "max_steps=2", "--json", check=True)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[0].startswith("model: hrm, hidden 16, 1 H + 1 L layers,") and "parameters" in lines[0]
    assert lines[1].startswith("memory estimate") and "weights" in lines[1] and "activations" in lines[1]
    assert len(result.stdout.splitlines()) == 1 and json.loads(result.stdout)["step"] == 2


def test_refuses_a_run_that_needs_more_memory_than_available(data, tmp_path, monkeypatch):
    """A limit of 1 MiB (given here in place of the machine's free memory): the tiny run's
    activations alone need more. Refused in one line before the run folder exists; the config key
    memory_check=false starts it anyway."""
    monkeypatch.setattr(loop_module, "available_memory", lambda device: 1 << 20)
    run = tmp_path / "run"
    with pytest.raises(HrmError) as error:
        train(tiny(data, "max_steps=1"), run)
    message = str(error.value)
    assert "\n" not in message and "only 1.0 MiB is available" in message and "memory_check=false" in message
    assert not run.exists()
    assert train(tiny(data, "max_steps=1", "memory_check=false"), run)["step"] == 1


def test_a_multi_gpu_recipe_on_cpu_is_named(data, tmp_path, monkeypatch, capsys):
    """The paper's batch and width on a CPU: a warning naming it, then (with the machine's memory
    replaced by 1 MiB here) the refusal; the smoke preset gets no warning."""
    monkeypatch.setattr(loop_module, "available_memory", lambda device: 1 << 20)
    with pytest.raises(HrmError):
        train(tiny(data, "global_batch_size=384", "arch.hidden_size=512", "arch.num_heads=8"), tmp_path / "run")
    assert "multi-GPU recipe" in capsys.readouterr().err
    with pytest.raises(HrmError):
        train(load_config(REPO / "examples" / "smoke.yaml", [f"data_path={data}", "device=cpu"]), tmp_path / "run")
    assert "multi-GPU recipe" not in capsys.readouterr().err


def test_threads_default_to_the_idle_cores_on_cpu_and_follow_the_option(data, tmp_path, monkeypatch):
    # the idle cores: the cores less the whole part of the 1-minute load, at least one
    assert [idle_cores(2, load) for load in (0.0, 0.4, 0.9, 1.0, 1.6, 9.0)] == [2, 2, 2, 1, 1, 1]
    assert idle_cores(8, 0.3) == 8 and idle_cores(8, 3.4) == 5 and idle_cores(1, 0.0) == 1
    cpu = torch.device("cpu")
    monkeypatch.setattr(distributed, "TORCH_DEFAULT_THREADS", 2)
    monkeypatch.setattr(distributed.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(distributed.os, "getloadavg", lambda: (0.1, 0.5, 0.9))
    assert idle_cores() == 4 and resolve_threads(None, cpu) == 2  # never more than PyTorch's own default
    monkeypatch.setattr(distributed.os, "getloadavg", lambda: (3.3, 0.5, 0.9))
    assert idle_cores() == 1 and resolve_threads(None, cpu) == 1  # busy neighbours: one thread
    assert resolve_threads(None, torch.device("meta")) is None  # not a CPU: left alone
    assert resolve_threads(3, cpu) == 3 and resolve_threads(0, cpu) is None  # 0: PyTorch's default
    result = run_hrm("train", "--data", data, "--out", tmp_path / "run", *TINY, "max_steps=1", "--threads", "2",
                     check=True)
    assert "2 CPU thread(s)" in result.stderr
    assert load_config(tmp_path / "run" / "config.yaml").threads == 2
    assert run_hrm("train", "--data", data, "--out", tmp_path / "r2", "--threads", "-1").returncode == 2


# ----------------------------------------------------------------------------- resume


def test_resume_without_a_checkpoint_is_one_error_line(data, tmp_path):
    run = tmp_path / "run"
    train(tiny(data, "max_steps=2"), run)
    for _, path in list_checkpoints(run):
        path.unlink()
    result = run_hrm("train", "--resume", run)
    assert_one_line_error(result, "no checkpoint to resume from")
    assert result.returncode == 1
    assert not (run / "checkpoints" / "step_2.pt").exists()


def test_resume_skips_a_truncated_latest_checkpoint(data, tmp_path):
    run = tmp_path / "run"
    train(tiny(data, "max_steps=6", "checkpoint_interval=3"), run)
    assert [s for s, _ in list_checkpoints(run)] == [3, 6]
    latest = run / "checkpoints" / "step_6.pt"
    latest.write_bytes(latest.read_bytes()[:1000])  # a full disk cut the write short
    result = run_hrm("train", "--resume", run, "max_steps=8", "--json", check=True)
    assert "skipped" in result.stderr and "step_6.pt" in result.stderr
    assert "resuming" in result.stderr and "from step 3" in result.stderr
    assert json.loads(result.stdout)["step"] == 8
    assert load_checkpoint(run)["step"] == 8
    # every checkpoint damaged: one line, nothing resumed
    for _, path in list_checkpoints(run):
        path.write_bytes(b"not a checkpoint")
    assert_one_line_error(run_hrm("train", "--resume", run), "no checkpoint of", "loads")


def test_a_foreign_pickle_never_suggests_weights_only_false(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"payload": types.SimpleNamespace(x=1)}, path)  # needs full unpickling to load
    with pytest.raises(HrmError) as error:
        load_checkpoint(path)
    message = str(error.value)
    for advice in ("weights_only", "trust", "safe_globals", "allowlist"):
        assert advice not in message, message
    assert "\n" not in message and "never unpickles" in message and "SimpleNamespace" in message


# ----------------------------------------------------------------------------- stopping


def test_one_stop_request_gives_one_error_line(data, tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "hrm", "train", "--data", str(data), "--out", str(run), *TINY,
            "epochs=200", "max_steps=2000"]
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_lines(run / "metrics.jsonl", 3, process, timeout=120)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGINT, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "SIGINT" in errors[0] and "--resume" in errors[0], stderr
    assert sum("received SIGINT" in line for line in stderr.splitlines()) == 1


def test_the_announced_steps_are_the_steps_the_run_takes(data, tmp_path, capsys):
    """200 puzzles of one example in batches of 16, 3 passes of one epoch: each pass drops its last
    8 examples, so 3 x 12 = 36 steps, where the schedule's estimate says int(3 x 200 / 16) = 37."""
    result = train(tiny(data), tmp_path / "run")
    announced = [line for line in capsys.readouterr().err.splitlines() if line.startswith("training on")]
    assert announced[0].endswith("; 36 steps, the learning-rate schedule spans 37"), announced
    assert result["step"] == 36 and load_checkpoint(tmp_path / "run")["step"] == 36


def test_ctrl_c_during_the_final_evaluation_keeps_the_checkpoint(tmp_path):
    """The issue's run: one step, then an evaluation over a test split far larger than the
    training; Ctrl-C during it stops it, the step's checkpoint is on disk, and the one error line
    says how to evaluate it; a resume runs the evaluation it missed."""
    data = write_sudoku4(tmp_path / "s4", train_size=32, test_size=4000, blanks=6)
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "hrm", "train", "--data", str(data), "--out", str(run), *TINY,
            "max_steps=1", "eval_batch_size=2"]  # 2,000 evaluation batches after the step
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checkpoint = run / "checkpoints" / "step_1.pt"
    deadline = time.time() + 120
    while not checkpoint.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # into the evaluation
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGINT, stderr
    assert sum("stopping the evaluation" in line for line in stderr.splitlines()) == 1, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "during the evaluation at step 1" in errors[0], stderr
    assert f"hrm eval --checkpoint {run} --data {data}" in errors[0] and "step_1.pt" in errors[0]
    assert "Traceback" not in stderr
    assert load_checkpoint(run)["step"] == 1
    assert not (run / "eval").exists()  # nothing logged of the stopped evaluation
    assert all(json.loads(line)["split"] == "train" for line in (run / "metrics.jsonl").read_text().splitlines())
    # The resume trains nothing more and runs the missed evaluation.
    result = run_hrm("train", "--resume", run, "eval_batch_size=400", "--json", check=True)
    assert json.loads(result.stdout)["split"] == "test" and json.loads(result.stdout)["count"] == 4000
    assert json.loads((run / "eval" / "step_1.json").read_text())["count"] == 4000
    assert load_checkpoint(run)["last_eval"]["step"] == 1  # recorded: the next resume does not repeat it


def test_the_evaluation_shows_its_progress(data, tmp_path, monkeypatch):
    from hrm.common import SilentBar
    from hrm.eval import inference

    bars = []

    class Bar(SilentBar):
        def __init__(self, total=None, desc="", unit=""):
            super().__init__()
            self.total, self.desc, self.unit = total, desc, unit
            bars.append(self)

    monkeypatch.setattr(inference, "progress", Bar)
    train(tiny(data, "max_steps=2"), tmp_path / "run")
    assert [(bar.desc, bar.total, bar.n, bar.unit) for bar in bars] == [("eval step 2", 40, 40, "ex")]


def test_a_second_signal_stops_at_once():
    """In one process the second Ctrl-C raises at once (no de-duplication window: that is for
    torchrun, which forwards the terminal's signal a second time)."""
    trainer = types.SimpleNamespace(state=loop_module.RunState(), dist=DistInfo(0, 1, 0, torch.device("cpu")))
    with loop_module._stop_on_signals(trainer):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert trainer.state.stop_signal == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
