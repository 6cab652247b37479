"""Data-parallel training under torchrun (gloo, CPU): two processes give the run of one process
with the same global batch and seed - loss curve, weights, puzzle-embedding rows, EMA, ACT carry -
and a run continues on another number of processes from its checkpoint."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO, wait_for_lines
from sudoku4_data import write_sudoku4
from hrm.models.checkpoints import load_checkpoint
from hrm.train.config import load_config, resume_config
from hrm.train.loop import train

TABLE = "inner.puzzle_emb.weights"
# A depth schedule, of 24 scheduled steps (48 puzzles / 8 x 4 epochs): bptt "all" from step
# round(2.4) = 2, H_cycles 2 from round(4.8) = 5, so both switch within the 6 steps, one on each
# side of the checkpoint at 3 (the runs below switch alike on one and two processes, and across a resume).
SCHEDULE = ["arch.bptt=[[0, 1], [0.1, all]]", "arch.H_cycles=[[0, 1], [0.2, 2]]"]
# Global batch 8 (4 rows per rank), 6 steps, a checkpoint at step 3, an EMA, a puzzle embedding
# over 6 identifiers (each batch holds several, on both ranks), the schedule above.
CONFIG = [*SCHEDULE, "global_batch_size=8", "epochs=4", "eval_interval=4", "arch.hidden_size=16",
          "arch.num_heads=2", "arch.H_layers=1", "arch.L_layers=1", "arch.halt_max_steps=2", "arch.puzzle_emb_ndim=16",
          "log_interval=1", "eval_batch_size=8", "lr=1e-3", "lr_warmup_steps=2", "device=cpu",
          "keep_checkpoints=0", "checkpoint_interval=3", "max_steps=6", "ema=true", "ema_rate=0.9",
          "compile=false"]  # eager: long CPU runs (the endless one below) compile by default
TOLERANCE = dict(rtol=1e-4, atol=1e-5)


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_sudoku4(tmp_path_factory.mktemp("dist") / "s4", train_size=48, test_size=16, blanks=6,
                         identifiers=6)


def torchrun(nproc: int, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "hrm", "train", "--quiet", "--json", *args]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def records(run: Path) -> list[dict]:
    drop = ("time", "examples_per_s", "peak_memory")  # of the machine, not of the run
    return [{k: v for k, v in json.loads(line).items() if k not in drop}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def assert_close_records(a: list[dict], b: list[dict]) -> None:
    assert [(r["step"], r["split"], r["count"]) for r in a] == [(r["step"], r["split"], r["count"]) for r in b]
    for x, y in zip(a, b):
        for key, value in x.items():
            if isinstance(value, float):
                assert y[key] == pytest.approx(value, rel=1e-4, abs=1e-6), (x["step"], key)
            else:
                assert y[key] == value, (x["step"], key)


def assert_close_tensors(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys(), what
    for key in a:
        if a[key].is_floating_point():
            torch.testing.assert_close(a[key], b[key], **TOLERANCE, msg=f"{what}: {key}")
        else:
            assert torch.equal(a[key], b[key]), f"{what}: {key}"


def flat(tree, prefix: str = "") -> dict:
    if isinstance(tree, torch.Tensor):
        return {prefix: tree}
    if isinstance(tree, dict):
        return {k: v for key, value in tree.items() for k, v in flat(value, f"{prefix}.{key}").items()}
    return {}


def assert_same_run(a: Path, b: Path, step: int) -> None:
    assert_close_records(records(a), records(b))
    x = load_checkpoint(a / "checkpoints" / f"step_{step}.pt")
    y = load_checkpoint(b / "checkpoints" / f"step_{step}.pt")
    assert x["step"] == y["step"] == step and x["sampler"] == y["sampler"]
    assert_close_tensors(x["model"], y["model"], "weights")
    assert_close_tensors(x["ema"], y["ema"], "ema")
    assert_close_tensors(flat(x["carry"]), flat(y["carry"]), "carry")
    assert_close_tensors(flat(x["optimizers"]["dense"]["state"]), flat(y["optimizers"]["dense"]["state"]), "adam")


@pytest.fixture(scope="module")
def one_process(data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("one") / "run"
    torch.set_num_threads(1)
    train(load_config(None, [*CONFIG, f"data_path={data}"]), run)
    return run


@pytest.fixture(scope="module")
def two_processes(data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("two") / "run"
    result = torchrun(2, "--data", str(data), "--out", str(run), *CONFIG)
    assert json.loads(result.stdout.strip().splitlines()[-1])["step"] == 6  # rank 0 prints the result
    return run


def test_two_processes_train_the_run_of_one(one_process, two_processes):
    for step in (3, 6):
        assert_same_run(one_process, two_processes, step)
    table = load_checkpoint(two_processes)["model"][TABLE]
    # Rows 1..6 (the identifiers) were trained, by updates from both ranks' rows; row 0 is unused.
    assert torch.count_nonzero(table[1:].abs().sum(1)) == 6 and not table[0].any()
    lines = records(two_processes)
    assert len(lines) == 6 + 1  # one train line per step, one final test line
    assert sum(r["count"] for r in lines if r["split"] == "train") >= 16  # losses on several steps
    assert sorted(p.name for p in (two_processes / "eval").iterdir()) == ["step_6.json"]
    stages = [(r["arch.bptt"], r["arch.H_cycles"]) for r in lines if r["split"] == "train"]
    assert stages == [(1, 1), (1, 1), ("all", 1), ("all", 1), ("all", 1), ("all", 2)]


def resume_from_step_3(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    (target / "checkpoints" / "step_6.pt").unlink()
    shutil.rmtree(target / "eval")
    return target


def test_a_two_process_run_continues_on_one_process(two_processes, one_process, tmp_path):
    """Guaranteed: the same run (sampler position, ACT carry of every slot, optimiser and EMA
    state, RNG), within float reduction order, whatever the number of processes."""
    run = resume_from_step_3(two_processes, tmp_path / "run")
    result = train(resume_config(run, []), run, resume=True)
    assert result["step"] == 6
    assert_same_run(one_process, run, 6)


def test_a_one_process_run_continues_on_two_processes(one_process, tmp_path):
    run = resume_from_step_3(one_process, tmp_path / "run")
    torchrun(2, "--resume", str(run))
    assert_same_run(one_process, run, 6)


def segment_on_each_slice(make_model, batch: dict[str, torch.Tensor], seed: int) -> dict:
    """{(rank, world): (carry, torch RNG state after)}: one training segment of a fresh
    `make_model()` on the rows a process of rank/world holds, for one process (0, 1) and each
    half of two (0, 2), (1, 2), the global RNG seeded with `seed` before each."""
    from hrm.common.distributed import DistInfo, assign_slots

    size = len(batch["inputs"])
    out = {}
    for rank, world in [(0, 1), (0, 2), (1, 2)]:
        model = make_model()
        assign_slots(model, DistInfo(rank, world, rank, torch.device("cpu")), size)
        rows = slice(rank * size // world, (rank + 1) * size // world)
        mine = {key: value[rows] for key, value in batch.items()}
        torch.manual_seed(seed)
        carry, _ = model(model.initial_carry(mine), mine)
        out[rank, world] = carry, torch.get_rng_state()
    return out


def test_exploration_draws_do_not_depend_on_how_the_batch_is_split():
    """A process holding slots [4, 8) of a global batch of 8 explores exactly as slots 4..7 of
    one process with the whole batch: same halting decisions, same generator state after."""
    from tests.test_model import random_batch, tiny_model

    def exploring_model():
        model = tiny_model(halt_max_steps=8, halt_exploration_prob=0.5).train()
        with torch.no_grad():  # Q says "halt" at once: only exploration keeps a slot running
            model.inner.q_head.weight.zero_()
            model.inner.q_head.bias.copy_(torch.tensor([5.0, -5.0]))
        return model

    runs = segment_on_each_slice(exploring_model, random_batch(0, size=8), seed=123)
    halted = {key: carry.halted for key, (carry, _) in runs.items()}
    rng_after = {key: state for key, (_, state) in runs.items()}
    whole = halted[0, 1]
    assert 0 < int(whole.sum()) < 8  # some slots explore, some halt (seeded: not a coin flip per run)
    assert torch.equal(torch.cat([halted[0, 2], halted[1, 2]]), whole)
    assert all(torch.equal(state, rng_after[0, 1]) for state in rng_after.values())


def test_sigterm_to_torchrun_stops_every_process_at_one_checkpoint(data, tmp_path):
    import signal

    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    endless = [*CONFIG, "epochs=2000", "eval_interval=2000", "max_steps=100000", "checkpoint_interval=0"]
    process = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone",
                                "--nproc-per-node=2", "-m", "hrm", "train", "--quiet", "--data", str(data),
                                "--out", str(run), *endless],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_lines(run / "metrics.jsonl", 3, process, timeout=300)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "interrupted by SIGTERM" in stderr and "--resume" in stderr, stderr[-3000:]
    stopped = load_checkpoint(run)["step"]
    assert stopped >= 3
    # Whatever step the signal hit, the checkpoint is one consistent state of both processes:
    # continued on one process for two more steps, it is the uninterrupted one-process run.
    target = stopped + 2
    result = train(resume_config(run, [f"max_steps={target}"]), run, resume=True)
    assert result["step"] == target
    straight = tmp_path / "straight"
    train(load_config(None, [*endless, f"max_steps={target}", f"data_path={data}"]), straight)
    resumed, uninterrupted = load_checkpoint(run), load_checkpoint(straight)
    assert resumed["step"] == uninterrupted["step"] == target and resumed["sampler"] == uninterrupted["sampler"]
    assert_close_tensors(resumed["model"], uninterrupted["model"], "weights")
    assert_close_tensors(resumed["ema"], uninterrupted["ema"], "ema")
