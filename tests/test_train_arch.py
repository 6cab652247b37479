"""Issue 6 wiring: presets and `arch.name` switches, EMA in the training loop, reference
checkpoints through `hrm eval --checkpoint` and `hrm train --init-from`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from hrm.builders.dataset import open_dataset
from conftest import REPO, assert_one_line_error, run_hrm
from sudoku4_data import write_sudoku4
from tests.test_reference_checkpoint import HRM_CONFIG, write_reference_run
from hrm.models.checkpoints import list_checkpoints, load_checkpoint
from hrm.train.config import load_config, resume_config
from hrm.common.distributed import DistInfo
from hrm.eval.inference import evaluate, load_for_inference, predict
from hrm.train.loop import train
from hrm.models.registry import build_model

SMALL = ["global_batch_size=8", "epochs=4", "eval_interval=4", "arch.hidden_size=16", "arch.num_heads=2",
         "arch.H_layers=1", "arch.L_layers=1", "arch.halt_max_steps=2", "arch.puzzle_emb_ndim=16",
         "log_interval=1", "eval_batch_size=8", "lr=1e-2", "lr_warmup_steps=0", "device=cpu", "keep_checkpoints=0"]


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_sudoku4(tmp_path_factory.mktemp("arch") / "s4", train_size=48, test_size=16, identifiers=6)


# ----------------------------------------------------------------------------- presets, arch.name


@pytest.mark.parametrize("preset", sorted(p.name for p in (REPO / "examples").glob("*.yaml")))
def test_every_preset_parses_and_builds_its_model(preset):
    config = load_config(REPO / "examples" / preset)
    shrink = [f"arch.hidden_size={32 if config.arch['name'] == 'trm' else 16}", "arch.num_heads=2"]
    small = load_config(REPO / "examples" / preset, shrink)
    assert {k: v for k, v in small.arch.items() if k not in ("hidden_size", "num_heads", "puzzle_emb_ndim")} == \
        {k: v for k, v in config.arch.items() if k not in ("hidden_size", "num_heads", "puzzle_emb_ndim")}
    model = build_model(small.arch, seq_len=81, vocab_size=11, num_puzzle_identifiers=3, batch_size=2)
    assert type(model.inner).__name__.lower().startswith(config.arch["name"][:3])
    if preset.startswith("trm_"):
        assert config.ema and config.ema_rate == 0.999 and config.arch["name"] == "trm"


@pytest.mark.parametrize("name", ["trm", "transformer"])
def test_arch_name_override_on_the_smoke_preset_keeps_its_sizes_and_trains(name, tmp_path):
    data = write_sudoku4(tmp_path / "data", train_size=160, test_size=16)
    config = load_config(REPO / "examples" / "smoke.yaml",
                         [f"arch.name={name}", f"data_path={data}", "max_steps=3", "device=cpu"])
    smoke = yaml.safe_load((REPO / "examples" / "smoke.yaml").read_text())["arch"]
    assert config.arch["name"] == name
    assert all(config.arch[k] == v for k, v in smoke.items() if k != "name")  # the preset's keys kept
    if name == "trm":  # TRM's own keys from its defaults
        assert config.arch["no_ACT_continue"] is True and config.arch["puzzle_emb_len"] == 16
    result = train(config, tmp_path / "run")
    assert result["step"] == 3
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["split"] == "train"] == [3]
    assert all(np.isfinite(r["lm_loss"]) for r in records if r["split"] == "train")
    model, saved = load_for_inference(tmp_path / "run", device="cpu")
    assert saved["arch"]["name"] == name and type(model.inner).__name__.lower().startswith(name[:3])


def test_switching_arch_name_drops_the_other_architectures_defaults():
    config = load_config(None, ["arch.name=trm"])
    assert (config.arch["H_cycles"], config.arch["L_cycles"], config.arch["H_layers"]) == (3, 6, 0)  # TRM's
    back = load_config(None, ["arch.name=trm", "arch.hidden_size=64", "arch.name=hrm"])
    assert back.arch["hidden_size"] == 64 and "puzzle_emb_len" not in back.arch and back.arch["H_layers"] == 4


# ----------------------------------------------------------------------------- EMA


def test_ema_is_updated_every_step_saved_resumed_and_evaluated(data, tmp_path):
    rate = 0.5
    options = [*SMALL, f"data_path={data}", "ema=true", f"ema_rate={rate}", "checkpoint_interval=1"]
    run = tmp_path / "run"
    train(load_config(None, [*options, "max_steps=2"]), run)
    train(resume_config(run, ["max_steps=4"]), run, resume=True)
    states = {step: load_checkpoint(path) for step, path in list_checkpoints(run)}
    assert sorted(states) == [1, 2, 3, 4]
    for step in (2, 3, 4):  # EMA_k = rate * EMA_{k-1} + (1 - rate) * weights_k, also across the resume
        ema, before, weights = states[step]["ema"], states[step - 1]["ema"], states[step]["model"]
        assert "inner.puzzle_emb.weights" in ema
        for key in ema:
            torch.testing.assert_close(ema[key], rate * before[key] + (1 - rate) * weights[key])
    final = states[4]
    assert any(not torch.equal(final["ema"][k], final["model"][k]) for k in final["ema"])

    model, config = load_for_inference(run, device="cpu")  # inference gets the EMA weights
    for key, tensor in model.state_dict().items():
        if key in final["model"]:
            assert torch.equal(tensor, final["ema"].get(key, final["model"][key])), key
    logged = json.loads((run / "eval" / "step_4.json").read_text())
    dist = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    ema_metrics = evaluate(model, open_dataset(data).split("test"), 8, dist)
    assert {k: logged[k] for k in ema_metrics} == pytest.approx(ema_metrics)

    uninterrupted = tmp_path / "uninterrupted"
    train(load_config(None, [*options, "max_steps=4"]), uninterrupted)
    again = load_checkpoint(uninterrupted)
    for key in final["ema"]:
        assert torch.equal(again["ema"][key], final["ema"][key]), key


# ----------------------------------------------------------------------------- reference checkpoints

# HRM_CONFIG's arch (halt_max_steps 3, H 2 x L 3 cycles, 2 + 1 layers, hidden 16, softmax), by hand.
REFERENCE_ARCH = {"name": "hrm", "loss_type": "softmax_cross_entropy", "halt_exploration_prob": 0.1,
                  "halt_max_steps": 3, "H_cycles": 2, "L_cycles": 3, "H_layers": 2, "L_layers": 1,
                  "hidden_size": 16, "num_heads": 2, "expansion": 2, "puzzle_emb_ndim": 16, "pos_encodings": "rope",
                  "forward_dtype": "bfloat16"}


def write_reference(folder: Path, vocab_size: int, num_ids: int) -> tuple[Path, dict[str, torch.Tensor]]:
    """A checkpoint in the reference's layout: `_orig_mod.model.`-prefixed state dict, all_config.yaml."""
    torch.manual_seed(5)
    model = build_model(REFERENCE_ARCH, seq_len=16, vocab_size=vocab_size, num_puzzle_identifiers=num_ids, batch_size=4)
    weights = model.state_dict()
    with torch.no_grad():
        weights["inner.puzzle_emb.weights"].normal_()
        weights["inner.q_head.weight"].normal_(0, 0.3)
    return write_reference_run(folder, weights, HRM_CONFIG, step=100), weights


def test_reference_checkpoint_evaluates_through_the_cli(data, tmp_path):
    num_ids = open_dataset(data).num_identifiers
    path, weights = write_reference(tmp_path / "ref", vocab_size=6, num_ids=num_ids)
    result = run_hrm("eval", "--checkpoint", path, "--data", data, "--json", check=True)
    summary = json.loads(result.stdout)
    # The same weights put in by hand into this tool's model give the same predictions.
    model = build_model(REFERENCE_ARCH, seq_len=16, vocab_size=6, num_puzzle_identifiers=num_ids, batch_size=4)
    model.load_state_dict(weights)
    pset = open_dataset(data).split("test").set()
    _, labels = pset.rows(0, pset.num_examples)
    predictions = np.concatenate([p for _, _, p, _ in predict(model.eval(), data, "test", batch_size=8)])
    assert summary["exact_accuracy"] == pytest.approx((predictions == labels).all(1).mean())
    assert summary["token_accuracy"] == pytest.approx((predictions == labels).mean())

    wrong, _ = write_reference(tmp_path / "wrong", vocab_size=7, num_ids=num_ids)
    assert_one_line_error(run_hrm("eval", "--checkpoint", wrong, "--data", data),
                          "vocabulary of 7 tokens", "the dataset has a vocabulary of 6 tokens")


def test_train_init_from_a_reference_checkpoint(data, tmp_path):
    num_ids = open_dataset(data).num_identifiers
    path, weights = write_reference(tmp_path / "ref", vocab_size=6, num_ids=num_ids)
    run = tmp_path / "run"
    # lr 0: the run's weights stay the reference's, so the first checkpoint shows what was loaded.
    run_hrm("train", "--data", data, "--out", run, "--init-from", path, *SMALL, "lr=0", "puzzle_emb_lr=0",
            "max_steps=1", check=True)
    saved = load_checkpoint(run)
    for key, tensor in weights.items():
        assert torch.equal(saved["model"][key], tensor), key
    # the checkpoint's arch, except a runtime key the config sets (SMALL's halt_max_steps=2; RUNTIME_ARCH_KEYS)
    assert saved["config"]["arch"] == {**REFERENCE_ARCH, "halt_max_steps": 2}
    assert saved["config"]["init_from"] == str(path)

    wrong, _ = write_reference(tmp_path / "wrong", vocab_size=6, num_ids=num_ids + 2)
    assert_one_line_error(run_hrm("train", "--data", data, "--out", tmp_path / "r2", "--init-from", wrong, *SMALL),
                          f"{num_ids + 2} puzzle identifiers", f"the dataset has {num_ids} puzzle identifiers")
    assert not (tmp_path / "r2").exists()


def test_a_checkpoint_for_another_dataset_is_one_line_before_building(data, tmp_path):
    run = tmp_path / "run"
    train(load_config(None, [*SMALL, f"data_path={data}", "max_steps=1"]), run)
    other = write_sudoku4(tmp_path / "other", train_size=16, test_size=8)  # no identifiers
    assert_one_line_error(run_hrm("eval", "--checkpoint", run, "--data", other), "does not match dataset")


def test_init_from_an_hrm_run_takes_its_ema_weights_and_arch(data, tmp_path):
    source = tmp_path / "source"
    train(load_config(None, [*SMALL, f"data_path={data}", "max_steps=2", "ema=true", "ema_rate=0.5",
                             "arch.L_cycles=3"]), source)
    trained = load_checkpoint(source)
    run = tmp_path / "run"
    # The new run asks for another L_cycles: init_from's architecture wins (its weights need it).
    train(load_config(None, [*SMALL, f"data_path={data}", "max_steps=1", "lr=0", "puzzle_emb_lr=0",
                             f"init_from={source}"]), run)
    started = load_checkpoint(run)
    assert started["config"]["arch"]["L_cycles"] == 3
    for key, tensor in trained["model"].items():
        assert torch.equal(started["model"][key], trained["ema"].get(key, tensor)), key
