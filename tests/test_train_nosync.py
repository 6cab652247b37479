"""The training step and the evaluation loop never make the device wait for the host (SPEC 7).

Proven on CPU by running them on tensors of the `meta` device: they carry shapes and dtypes but
no values, so anything that reads a value back to the host - `.item()`, `.tolist()`,
`bool(tensor)`, `float(tensor)`, `nonzero`, `unique`, a boolean mask index - raises there. The
whole step runs (forward with the ACT refill and exploration draws, the extra Q-target forward,
loss, backward, AdamAtan2, sparse sign-SGD, EMA, the metric sums); so does the evaluation loop
over a dataset (batches, segments, scoring and summing: eval.candidates' loop, as the
trainer runs it). The injected variants add one host read
to each and check that the test then fails: it can tell.
"""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import torch

from sudoku4_data import write_sudoku4
from hrm.eval import candidates, inference
from hrm.train import losses, loop, optim
from hrm.train.config import load_config
from hrm.eval.batches import as_torch
from hrm.common.distributed import DistInfo
from hrm.train.ema import Ema

CONFIG = ["global_batch_size=8", "epochs=2", "eval_interval=1", "arch.hidden_size=16", "arch.num_heads=2",
          "arch.H_layers=1", "arch.L_layers=1", "arch.halt_max_steps=3", "arch.puzzle_emb_ndim=16",
          "eval_batch_size=8", "lr=1e-3", "lr_warmup_steps=2", "device=cpu", "ema=true", "compile=false"]
META = torch.device("meta")
HOST_READ_ERRORS = (RuntimeError, NotImplementedError)  # what meta tensors raise on a value read

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_sudoku4(tmp_path_factory.mktemp("nosync") / "s4", train_size=32, test_size=12, blanks=6,
                         identifiers=5)


def meta_trainer(data: Path, tmp_path: Path) -> tuple[loop.Trainer, list[dict[str, torch.Tensor]]]:
    """A Trainer whose model, optimisers and EMA live on the meta device, and real batches moved there."""
    config = load_config(None, [*CONFIG, f"data_path={data}"])
    dist = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    built = loop.build(config, tmp_path / "run", dist)
    batches = built.loader.iterate(prefetch=False)
    cpu_batches = [as_torch(next(batches).batch, dist.device) for _ in range(3)]
    built.loader.close()
    model = copy.deepcopy(built.model).to(META)
    assert next(model.parameters()).device == META and model.puzzle_emb.weights.device == META
    trainer = dataclasses.replace(built, dist=DistInfo(rank=0, world_size=1, local_rank=0, device=META),
                                  model=model, forward=model, optimizers=loop.build_optimizers(model, config),
                                  ema=Ema(model, config.ema_rate), state=loop.RunState())
    return trainer, [{k: v.to(META) for k, v in batch.items()} for batch in cpu_batches]


def inject_item_in_loss(monkeypatch):
    real = losses.act_loss

    def act_loss(*args, **kwargs):
        loss, metrics = real(*args, **kwargs)
        if loss.item() > 1e9:  # the kind of line that slips in: "skip absurd losses"
            raise AssertionError("unreachable")
        return loss, metrics
    monkeypatch.setattr(loop, "act_loss", act_loss)


def inject_bool_in_optimizer(monkeypatch):
    real = optim.AdamAtan2._update

    def update(self, params, group, t):
        if bool(params[0].grad.abs().max() == 0):  # "skip the step on a zero gradient"
            return
        real(self, params, group, t)
    monkeypatch.setattr(optim.AdamAtan2, "_update", update)


def inject_unique_in_sign_sgd(monkeypatch):
    real = optim.SparseSignSGD.step

    def step(self, closure=None):
        self.puzzle_emb.local_ids.unique()  # the per-step unique() this optimiser used to make
        return real(self, closure)
    monkeypatch.setattr(optim.SparseSignSGD, "step", step)


@pytest.mark.parametrize("inject", [None, inject_item_in_loss, inject_bool_in_optimizer, inject_unique_in_sign_sgd],
                         ids=["as-built", "item-in-loss", "bool-in-adam", "unique-in-sign-sgd"])
def test_training_step_has_no_host_sync(data, tmp_path, monkeypatch, inject):
    trainer, batches = meta_trainer(data, tmp_path)
    if inject is not None:
        inject(monkeypatch)
        with pytest.raises(HOST_READ_ERRORS):
            loop.train_step(trainer, batches[0])
        return
    for batch in batches:  # the first step refills every slot; the others carry on
        loop.train_step(trainer, batch)
    assert trainer.state.step == 3
    assert trainer.state.carry.z_high.device == META
    assert set(trainer.state.window) >= {"count", "exact_accuracy", "nonfinite", "steps_done"}
    # The optimisers really ran: AdamAtan2 state for every dense weight, sign-SGD's gradient used.
    dense = trainer.optimizers["dense"]
    assert all(dense.state[p]["step"] == 3 for p in dense.param_groups[0]["params"])
    assert trainer.model.puzzle_emb.local_weights.grad is None  # zero_grad after its step


def inject_item_in_scoring(monkeypatch):
    real = inference.score

    def score(*args, **kwargs):
        sums = real(*args, **kwargs)
        print(f"batch exact: {sums['exact_accuracy'].item()}")  # a "harmless" progress print
        return sums
    monkeypatch.setattr(inference, "score", score)


def inject_halt_check_in_segments(monkeypatch):
    real = candidates.run_chunk

    def run_chunk(model, batch, spec, generator):
        for answers in real(model, batch, spec, generator):
            yield answers
            if bool((answers.q_halt > 0).all()):  # "stop once every candidate wants to halt"
                return
    monkeypatch.setattr(candidates, "run_chunk", run_chunk)


def inject_progress_from_the_device(monkeypatch):
    real = inference.score

    def score(predictions, labels, *args):
        sums = real(predictions, labels, *args)
        inference.progress().set_postfix(solved=int(sums["exact_accuracy"]))  # a bar showing the running score
        return sums
    monkeypatch.setattr(inference, "score", score)


@pytest.mark.parametrize("inject", [None, inject_item_in_scoring, inject_halt_check_in_segments,
                                    inject_progress_from_the_device],
                         ids=["as-built", "item-in-scoring", "halt-check-per-segment", "progress-from-device"])
def test_evaluation_loop_has_no_host_sync(data, tmp_path, monkeypatch, inject):
    """The trainer's evaluation: the one evaluation loop (eval.candidates) with one plain candidate."""
    trainer, _ = meta_trainer(data, tmp_path)
    if inject is not None:
        inject(monkeypatch)
        with pytest.raises(HOST_READ_ERRORS):
            inference.evaluation_sums(trainer.model, trainer.test_split, 8, trainer.dist)
        return
    calls = []
    inner = trainer.model.inner
    real_forward = inner.forward
    inner.forward = lambda *a: calls.append(1) or real_forward(*a)
    sums = inference.evaluation_sums(trainer.model, trainer.test_split, 8, trainer.dist, stop=lambda: False)
    assert sums.device == META and sums.shape == (len(inference.EVAL_KEYS) + 1,)
    assert len(calls) == 2 * 3  # 12 test examples in batches of 8: 2 batches x halt_max_steps segments
