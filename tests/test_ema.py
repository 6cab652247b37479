"""EMA of weights: the update against hand arithmetic, what it tracks, the swap for evaluation
restoring the model's own weights, and a weights_only round trip of its state."""
from __future__ import annotations

import io

import pytest
import torch

from hrm.common import HrmError
from tests.test_model import one_thread, random_batch, tiny_model  # noqa: F401 - fixture
from tests.test_model_trm import TINY_TRANSFORMER, TINY_TRM
from hrm.train.ema import Ema

QKV = "inner.H_level.layers.0.self_attn.qkv_proj.weight"
TABLE = "inner.puzzle_emb.weights"


def set_tensor(model, name: str, value: torch.Tensor) -> None:
    with torch.no_grad():
        model.state_dict()[name].copy_(value)  # state_dict tensors share storage with the model


def test_update_is_rate_times_average_plus_one_minus_rate_times_weights():
    model = tiny_model()
    rate = 0.9
    start = {name: model.state_dict()[name].clone() for name in (QKV, TABLE, "inner.q_head.bias")}
    ema = Ema(model, rate=rate)
    g = torch.Generator().manual_seed(0)
    first = {name: torch.randn(t.shape, generator=g, dtype=t.dtype) for name, t in start.items()}
    second = {name: torch.randn(t.shape, generator=g, dtype=t.dtype) for name, t in start.items()}
    for values in (first, second):
        for name, value in values.items():
            set_tensor(model, name, value)
        ema.update(model)
    state = ema.state_dict()
    for name in start:
        # Two steps by hand, element by element in Python floats (the tensors hold float64).
        for index in [(0,) * start[name].ndim, tuple(s - 1 for s in start[name].shape)]:
            w0, w1, w2 = (float(t[name][index]) for t in (start, first, second))
            expected = rate * (rate * w0 + (1 - rate) * w1) + (1 - rate) * w2
            assert float(state[name][index]) == pytest.approx(expected, rel=1e-12, abs=1e-14)
    # An untouched parameter stays at its value.
    lm_head = "inner.lm_head.weight"
    torch.testing.assert_close(state[lm_head], model.state_dict()[lm_head], rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("arch", [None, TINY_TRM, TINY_TRANSFORMER], ids=["hrm", "trm", "transformer"])
def test_tracks_parameters_and_the_puzzle_table_by_state_dict_keys(arch):
    model = tiny_model(**(arch or {}))
    keys = set(Ema(model).state_dict())
    assert keys == {name for name, _ in model.named_parameters()} | {TABLE}
    assert not keys & {"inner.H_init", "inner.L_init"}  # fixed states are not averaged
    # The EMA state loads straight into a model of the same architecture.
    missing, unexpected = model.load_state_dict(Ema(model).state_dict(), strict=False)
    assert not unexpected and set(missing) == {"inner.H_init", "inner.L_init"}


def test_swapped_in_evaluates_with_the_averages_and_restores_the_weights():
    model = tiny_model().eval()
    ema = Ema(model, rate=0.5)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)
        model.puzzle_emb.weights.mul_(2)
    ema.update(model)
    own = {name: t.clone() for name, t in model.state_dict().items()}
    params_before = [id(p) for p in model.parameters()]
    batch = random_batch(0)

    def logits():
        with torch.no_grad():
            return model(model.initial_carry(batch), batch)[1]["logits"]

    own_logits = logits()
    with ema.swapped_in(model):
        for name, average in ema.state_dict().items():
            assert torch.equal(model.state_dict()[name], average)
        ema_logits = logits()
    assert not torch.allclose(ema_logits, own_logits)
    for name, value in model.state_dict().items():
        assert torch.equal(value, own[name]), name
    assert [id(p) for p in model.parameters()] == params_before  # optimisers keep their tensors
    # Restored on an exception too.
    with pytest.raises(RuntimeError, match="boom"):
        with ema.swapped_in(model):
            raise RuntimeError("boom")
    assert torch.equal(model.state_dict()[QKV], own[QKV])


def test_state_dict_round_trips_through_weights_only_load():
    model = tiny_model()
    ema = Ema(model, rate=0.99)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5)
    ema.update(model)
    buffer = io.BytesIO()
    torch.save({"ema": ema.state_dict()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)["ema"]
    fresh = Ema(tiny_model(), rate=0.99)
    fresh.load_state_dict(state)
    for name, value in ema.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], value)
    # Updates continue identically after the reload.
    ema.update(model)
    fresh.update(model)
    assert torch.equal(fresh.state_dict()[QKV], ema.state_dict()[QKV])


def test_mismatches_and_bad_rates_are_errors():
    model = tiny_model()
    ema = Ema(model)
    state = ema.state_dict()
    with pytest.raises(HrmError, match="missing"):
        ema.load_state_dict({k: v for k, v in state.items() if k != QKV})
    with pytest.raises(HrmError, match="shape"):
        ema.load_state_dict({**state, QKV: state[QKV][:1]})
    with pytest.raises(ValueError, match="wrapper"):
        ema.update(tiny_model(**TINY_TRM))
    with pytest.raises(HrmError, match="ema_rate"):
        Ema(model, rate=1.5)
