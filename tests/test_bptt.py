"""Gradient depth (`arch.bptt`): which updates of a segment carry gradient, against the code as it
was before the option (bit for bit at bptt=1) and against hand-unrolled float64 recurrences of
plain tensor ops (tests/test_model*.py's references) for deeper gradients."""
from __future__ import annotations

import pytest
import torch

from hrm.common import UsageError
from hrm.models.registry import build_model, check_depth
from tests.test_model import (BATCH, SEQ_LEN, TINY, h_level, one_thread,  # noqa: F401 - fixture
                              random_batch, tiny_model)
from tests.test_model_trm import TINY_TRM, h_embed, h_net, oracle_leaves, probe_objective


# ---------------------------------------------------------------------------------------------
# The forwards of models/hrm.py and models/trm.py as they were before arch.bptt (one-step
# gradient; TRM's last recursion), kept here verbatim (but for update's module name, which only
# names the state for an observer) to check bptt=1 changes nothing.

def hrm_forward_before_bptt(inner, z_high, z_low, batch):
    cfg = inner.config
    cos_sin = inner.rotary()
    x = inner.input_embeddings(batch["inputs"], batch["puzzle_identifiers"])
    with torch.no_grad():
        for h_step in range(cfg.H_cycles):
            for l_step in range(cfg.L_cycles):
                is_last_low_step = h_step == cfg.H_cycles - 1 and l_step == cfg.L_cycles - 1
                if not is_last_low_step:
                    z_low = inner.update(z_low, inner.L_level(z_low, z_high + x, cos_sin), "low")
            if h_step != cfg.H_cycles - 1:
                z_high = inner.update(z_high, inner.H_level(z_high, z_low, cos_sin), "high")
    z_low = inner.update(z_low, inner.L_level(z_low, z_high + x, cos_sin), "low")
    z_high = inner.update(z_high, inner.H_level(z_high, z_low, cos_sin), "high")
    return z_high.detach(), z_low.detach(), *inner.heads(z_high)


def trm_forward_before_bptt(inner, z_high, z_low, batch):
    cos_sin = inner.rotary()
    x = inner.input_embeddings(batch["inputs"], batch["puzzle_identifiers"])
    answer, latent = z_high, z_low
    with torch.no_grad():
        for _ in range(inner.config.H_cycles - 1):
            answer, latent = inner.recursion(answer, latent, x, cos_sin)
    answer, latent = inner.recursion(answer, latent, x, cos_sin)
    return answer.detach(), latent.detach(), *inner.heads(answer)


def states(model, seed: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    cfg = model.config
    g = torch.Generator().manual_seed(seed)
    shape = (BATCH, SEQ_LEN + cfg.puzzle_emb_len, cfg.hidden_size)
    dtype = model.inner.embed_tokens.embedding_weight.dtype
    return torch.randn(shape, generator=g, dtype=dtype), torch.randn(shape, generator=g, dtype=dtype)


def segment_gradients(model, forward, batch, z_high, z_low) -> dict[str, torch.Tensor]:
    """{name: d objective / d tensor} for every parameter, the puzzle rows and the two input states,
    through `forward(inner, z_high, z_low, batch)`; zeros where no gradient arrives."""
    model.zero_grad(set_to_none=True)
    if model.puzzle_emb is not None:
        model.puzzle_emb.local_weights.grad = None  # a buffer: zero_grad leaves it
    z_high, z_low = z_high.clone().requires_grad_(), z_low.clone().requires_grad_()
    outputs = forward(model.inner, z_high, z_low, batch)
    objective = probe_objective(outputs[2:])
    objective(*outputs[2:]).backward()
    leaves = dict(model.named_parameters())
    if model.puzzle_emb is not None:
        leaves["puzzle rows"] = model.puzzle_emb.local_weights
    leaves["z_high in"], leaves["z_low in"] = z_high, z_low
    return {name: torch.zeros_like(t) if t.grad is None else t.grad.clone() for name, t in leaves.items()}


def model_forward(inner, z_high, z_low, batch):
    return inner(z_high, z_low, batch)


@pytest.mark.parametrize("arch", [dict(TINY), dict(TINY_TRM), dict(TINY, damping=0.7)],
                         ids=["hrm", "trm", "hrm-damped"])
def test_bptt_1_gives_the_gradients_of_the_code_before_it_bit_for_bit(arch):
    model = tiny_model(**arch, bptt=1).float().train()
    before = trm_forward_before_bptt if arch.get("name") == "trm" else hrm_forward_before_bptt
    batch = random_batch(1)
    z_high, z_low = states(model)
    now = segment_gradients(model, model_forward, batch, z_high, z_low)
    then = segment_gradients(model, before, batch, z_high, z_low)
    assert now.keys() == then.keys()
    for name in now:
        assert torch.equal(now[name], then[name]), name
    assert not now["z_low in"].any() and not now["z_high in"].any()  # one step: nothing reaches the inputs


# ---------------------------------------------------------------------------------------------
# Hand-unrolled references. HRM with H_cycles 2 x L_cycles 3 runs these updates in this order:
HRM_UPDATES = ["L", "L", "L", "H", "L", "L", "L", "H"]
# arch.bptt -> the first of them that carries gradient (written out by hand from the definition:
# the last bptt low updates and every high update among them); None: all of them. The result of
# every update before it is a constant to the gradient (detached).
HRM_FIRST_WITH_GRAD = {1: 6, 2: 5, 4: 2, "all": None}
# Which input state a gradient reaches: with bptt 4 the first update with gradient is the third
# low update of the first cycle, whose injection is z_high as it came in, but whose z_low is the
# no-grad result of two updates.
HRM_REACHES_INPUTS = {1: (False, False), 2: (False, False), 4: (True, False), "all": (True, True)}


def hand_unrolled_hrm(w, rows, batch, z_high, z_low, first_with_grad):
    cfg = TINY
    x = h_embed(w, rows, batch["inputs"], cfg["hidden_size"], -(-cfg["puzzle_emb_ndim"] // cfg["hidden_size"]),
                learned=False)
    before_window = lambda i, z: z.detach() if first_with_grad is not None and i < first_with_grad else z  # noqa: E731
    for i, which in enumerate(HRM_UPDATES):
        if which == "L":
            z_low = before_window(i, h_level(z_low, z_high + x, w, "L", cfg["L_layers"], cfg["num_heads"], True))
        else:
            z_high = before_window(i, h_level(z_high, z_low, w, "H", cfg["H_layers"], cfg["num_heads"], True))
    return z_high, z_low, *heads(w, z_high, -(-cfg["puzzle_emb_ndim"] // cfg["hidden_size"]))


# TRM with T = H_cycles 3 recursions of n = L_cycles 2 latent updates and one answer update;
# bptt -> the first recursion with gradient.
TRM_FIRST_WITH_GRAD = {1: 2, 2: 1, "all": None}
TRM_REACHES_INPUTS = {1: (False, False), 2: (False, False), "all": (True, True)}


def hand_unrolled_trm(w, rows, batch, answer, latent, first_with_grad):
    cfg = TINY_TRM
    x = h_embed(w, rows, batch["inputs"], cfg["hidden_size"], cfg["puzzle_emb_len"], learned=False)
    for recursion in range(3):
        no_grad = first_with_grad is not None and recursion < first_with_grad
        before_window = lambda z: z.detach() if no_grad else z  # noqa: E731
        latent = before_window(h_net(latent, answer + x, w, cfg))
        latent = before_window(h_net(latent, answer + x, w, cfg))
        answer = before_window(h_net(answer, latent, w, cfg))
    return answer, latent, *heads(w, answer, cfg["puzzle_emb_len"])


def heads(w, z_high, puzzle_len):
    logits = (z_high @ w["inner.lm_head.weight"].T)[:, puzzle_len:]
    q = z_high[:, 0] @ w["inner.q_head.weight"].T + w["inner.q_head.bias"]
    return logits, q[:, 0], q[:, 1]


def oracle_gradients(model, oracle, first_with_grad, batch, z_high, z_low) -> tuple[dict[str, torch.Tensor], tuple]:
    weights, rows = oracle_leaves(model, batch)
    z_high, z_low = z_high.clone().requires_grad_(), z_low.clone().requires_grad_()
    outputs = oracle(weights, rows, batch, z_high, z_low, first_with_grad)
    leaves = {**weights, "puzzle rows": rows, "z_high in": z_high, "z_low in": z_low}
    grads = torch.autograd.grad(probe_objective(outputs[2:])(*outputs[2:]), list(leaves.values()), allow_unused=True)
    return {name: torch.zeros_like(leaf) if g is None else g for (name, leaf), g in zip(leaves.items(), grads)}, outputs


CASES = [("hrm", bptt) for bptt in HRM_FIRST_WITH_GRAD] + [("trm", bptt) for bptt in TRM_FIRST_WITH_GRAD]


@pytest.mark.parametrize("name,bptt", CASES)
def test_deeper_gradients_equal_a_hand_unrolled_float64_recurrence(name, bptt):
    arch = TINY if name == "hrm" else TINY_TRM
    oracle, first, reaches = ((hand_unrolled_hrm, HRM_FIRST_WITH_GRAD, HRM_REACHES_INPUTS) if name == "hrm"
                              else (hand_unrolled_trm, TRM_FIRST_WITH_GRAD, TRM_REACHES_INPUTS))
    model = tiny_model(**arch, bptt=bptt).train()  # float64
    batch = random_batch(1)
    z_high, z_low = states(model)
    got = segment_gradients(model, model_forward, batch, z_high, z_low)
    want, expected = oracle_gradients(model, oracle, first[bptt], batch, z_high, z_low)

    out = model.inner(z_high, z_low, batch)
    for value, reference in zip(out, expected):
        torch.testing.assert_close(value, reference.detach(), rtol=1e-9, atol=1e-10)
    assert got.keys() == want.keys()
    for key in got:
        torch.testing.assert_close(got[key], want[key], rtol=1e-8, atol=1e-10, msg=f"gradient of {key}")
    # The gradients that must be zero are: no update before the window leaks gradient.
    assert (bool(got["z_high in"].any()), bool(got["z_low in"].any())) == reaches[bptt]


def test_each_depth_gives_other_gradients():
    """The oracle can tell the depths apart (else the test above could not fail)."""
    model = tiny_model(**TINY)
    batch = random_batch(1)
    z_high, z_low = states(model)
    block = "inner.L_level.layers.0.self_attn.qkv_proj.weight"
    grads = [oracle_gradients(model, hand_unrolled_hrm, first, batch, z_high, z_low)[0][block]
             for first in HRM_FIRST_WITH_GRAD.values()]
    for i in range(len(grads)):
        for j in range(i + 1, len(grads)):
            assert not torch.allclose(grads[i], grads[j], rtol=1e-3)


def test_no_gradient_in_evaluation_and_in_the_q_target_forward_whatever_the_depth():
    model = tiny_model(**TINY, bptt="all").train()
    batch = random_batch(1)
    carry = model.initial_carry(batch)
    _, outputs = model(carry, batch)
    assert outputs["logits"].requires_grad and not outputs["target_q_continue"].requires_grad
    with torch.no_grad():
        z_high, z_low, logits, *_ = model.inner(*states(model), batch)
    assert not logits.requires_grad


def test_a_depth_switch_takes_effect_at_the_next_segment():
    model = tiny_model(**TINY).train()
    batch = random_batch(1)
    z_high, z_low = states(model)
    model.config.set_depth(bptt="all")
    assert model.inner.config.gradient_steps == 6
    switched = segment_gradients(model, model_forward, batch, z_high, z_low)
    fresh = segment_gradients(tiny_model(**TINY, bptt="all").train(), model_forward, batch, z_high, z_low)
    for key in fresh:
        assert torch.equal(switched[key], fresh[key]), key
    model.config.set_depth(bptt=6)  # all 6 low steps of 2 x 3: fine, but not with one cycle
    with pytest.raises(UsageError, match=r"arch.bptt .*from 1 to 3"):
        model.config.set_depth(H_cycles=1)
    assert model.config.H_cycles == 2  # a refused stage changes nothing


@pytest.mark.parametrize("arch,message", [
    (dict(name="hrm", H_cycles=2, L_cycles=2, bptt=5), "from 1 to 4, the low-level steps"),
    (dict(name="hrm", bptt=0), "arch.bptt"),
    (dict(name="hrm", bptt="most"), "arch.bptt"),
    (dict(name="trm", H_cycles=3, bptt=4), "from 1 to 3, the recursions"),
    (dict(name="transformer", bptt=2), "must be 1 or 'all'"),
    (dict(name="hrm", H_cycles=[[0, 1], [0.5, 2]], L_cycles=2, bptt=3), r"arch.bptt \(from fraction 0 of"),
    (dict(name="hrm", bptt=[[0, 1], [0.5, 2], [0.5, 3]]), "arch.bptt: schedule fractions must increase"),
    (dict(name="hrm", L_cycles=[[0.2, 1]]), "arch.L_cycles: a schedule starts at fraction 0"),
    (dict(name="hrm", H_cycles=[[0, 1], [1.5, 2]]), r"arch.H_cycles: schedule fractions must be numbers in \[0, 1\)"),
    (dict(name="hrm", H_cycles=[[0, 1], [0.5, 0]]), "arch.H_cycles .* must be a positive integer"),
    (dict(name="hrm", bptt=[1, 2]), "arch.bptt: a schedule is a list of"),
])
def test_depth_values_the_architecture_cannot_take_are_usage_errors_naming_the_key(arch, message):
    with pytest.raises(UsageError, match=message):
        check_depth(arch)


def test_a_scheduled_arch_builds_at_its_last_stage():
    arch = {**TINY, "H_cycles": [[0, 1], [0.5, 3]], "bptt": [[0, 1], [0.7, "all"]]}
    model = build_model(arch, seq_len=SEQ_LEN, vocab_size=5, num_puzzle_identifiers=7, batch_size=BATCH)
    assert (model.config.H_cycles, model.config.bptt, model.config.gradient_steps) == (3, "all", 9)
    check_depth(arch)
    check_depth({"name": "transformer", "bptt": "all"})
