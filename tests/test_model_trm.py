"""TRM and the transformer baseline against hand-written float64 computations of their equations:
one segment's outputs, which updates carry gradient, TRM's halting rule, parameter counts."""
from __future__ import annotations

import math

import pytest
import torch

from hrm.common import HrmError
from tests.test_model import (BATCH, SEQ_LEN, h_block, h_token_mlp_block, one_thread,  # noqa: F401 - fixture
                              random_batch, tiny_model)
from tests.test_model_act import set_q_bias
from hrm.models.registry import build_model

TINY_TRM = dict(name="trm", H_cycles=3, L_cycles=2, L_layers=2, hidden_size=16, num_heads=2, expansion=2.0,
                puzzle_emb_ndim=20, puzzle_emb_len=3, halt_max_steps=4, halt_exploration_prob=0.0,
                forward_dtype="float32")


# ---------------------------------------------------------------------------------------------
# Hand-written references: plain tensor ops on a dict of weights.

def h_embed(w, puzzle_rows, inputs, hidden, puzzle_len, learned):
    """[puzzle row zero-padded to puzzle_len positions; token embeddings] (+ positions) * sqrt(hidden)."""
    tokens = w["inner.embed_tokens.embedding_weight"][inputs.long()]
    rows = puzzle_rows if puzzle_rows is not None else tokens.new_zeros(len(tokens), 0)
    padded = torch.cat([rows, rows.new_zeros(len(rows), puzzle_len * hidden - rows.shape[1])], dim=1)
    x = torch.cat([padded.reshape(-1, puzzle_len, hidden), tokens], dim=1)
    if learned:
        x = (x + w["inner.embed_pos.embedding_weight"]) / math.sqrt(2)
    return x * math.sqrt(hidden)


def h_net(a, b, w, cfg, stack="inner.L_level.layers."):
    """TRM's one network f(a, b): its L_layers blocks applied to a + b."""
    h = a + b
    for i in range(cfg["L_layers"]):
        if cfg.get("mlp_t"):
            h = h_token_mlp_block(h, w, f"{stack}{i}.")
        else:
            h = h_block(h, w, f"{stack}{i}.", cfg["num_heads"], cfg.get("pos_encodings", "rope") == "rope")
    return h


def h_trm_segment(w, puzzle_rows, batch, y, z, cfg, gradient="last recursion"):
    """T recursions of (n times z = f(z, y + x); y = f(y, z)). gradient: "last recursion" (TRM)
    detaches y and z before the last recursion; "full" keeps every update in the graph;
    "one-step" (HRM's approximation) detaches before the last latent update instead."""
    x = h_embed(w, puzzle_rows, batch["inputs"], cfg["hidden_size"], cfg["puzzle_emb_len"],
                cfg.get("pos_encodings") == "learned")
    n, big_t = cfg["L_cycles"], cfg["H_cycles"]
    for recursion in range(big_t):
        if gradient == "last recursion" and recursion == big_t - 1:
            y, z = y.detach(), z.detach()
        for step in range(n):
            if gradient == "one-step" and recursion == big_t - 1 and step == n - 1:
                y, z = y.detach(), z.detach()
            z = h_net(z, y + x, w, cfg)
        y = h_net(y, z, w, cfg)
    logits = (y @ w["inner.lm_head.weight"].T)[:, cfg["puzzle_emb_len"]:]
    q = y[:, 0] @ w["inner.q_head.weight"].T + w["inner.q_head.bias"]
    return logits, q[:, 0], q[:, 1], y, z


# ---------------------------------------------------------------------------------------------


def one_segment(model, positions):
    """Run the model (training mode) on a carry with arbitrary states in which slot 1 halted.
    -> (outputs, new carry, (data, z_high, z_low) the oracle must start from: slot 1 refilled from
    the new batch and reset to the initial states, the others as they were)."""
    model.train()
    hidden = model.config.hidden_size
    old_batch, new_batch = random_batch(1), random_batch(2)
    g = torch.Generator().manual_seed(3)
    carry = model.initial_carry(old_batch)
    carry.z_high = torch.randn(BATCH, positions, hidden, generator=g, dtype=torch.float64)
    carry.z_low = torch.randn(BATCH, positions, hidden, generator=g, dtype=torch.float64)
    carry.steps = torch.tensor([2, 1, 3], dtype=torch.int32)
    carry.halted = torch.tensor([False, True, False])
    carry.current_data = old_batch
    z_high, z_low = carry.z_high.clone(), carry.z_low.clone()
    new_carry, outputs = model(carry, new_batch)

    data = {k: old_batch[k].clone() for k in old_batch}
    for k in data:
        data[k][1] = new_batch[k][1]
    z_high[1] = model.inner.H_init.expand(positions, hidden)
    z_low[1] = model.inner.L_init.expand(positions, hidden)
    return outputs, new_carry, (data, z_high, z_low)


def oracle_leaves(model, data):
    """Copies of the model's weights (by name) and of the batch's puzzle rows, requiring grad."""
    weights = {name: p.detach().clone().requires_grad_() for name, p in model.named_parameters()}
    rows = None
    if model.puzzle_emb is not None:
        rows = model.puzzle_emb.weights[data["puzzle_identifiers"].long()].clone().requires_grad_()
    return weights, rows


def probe_objective(expected):
    """An arbitrary scalar of all three outputs (random weights), to compare gradients through."""
    r = torch.Generator().manual_seed(4)
    probe = [torch.randn(t.shape, generator=r, dtype=torch.float64) for t in expected[:3]]
    return lambda logits, q_halt, q_continue: ((logits * probe[0]).sum() + (q_halt * probe[1]).sum()
                                               + (q_continue * probe[2]).sum())


def assert_gradients_match(model, outputs, expected, weights, rows):
    """The objective back-propagated through the model and through the oracle agree for every
    parameter and the puzzle rows. -> (leaves, the oracle's gradients, objective)."""
    objective = probe_objective(expected)
    objective(outputs["logits"], outputs["q_halt_logits"], outputs["q_continue_logits"]).backward()
    leaves = list(weights.values()) + ([rows] if rows is not None else [])
    wanted = torch.autograd.grad(objective(*expected[:3]), leaves, allow_unused=True)
    got = [p.grad for p in model.parameters()]
    if rows is not None:
        got.append(model.puzzle_emb.local_weights.grad)
    for name, g, want in zip(list(weights) + ["puzzle rows"], got, wanted):
        want = torch.zeros_like(g) if want is None else want
        torch.testing.assert_close(g, want, rtol=1e-8, atol=1e-10, msg=f"gradient of {name}")
    return leaves, wanted, objective


TRM_VARIANTS = {
    "attention+rope": {},
    "mlp_t, no positions": dict(mlp_t=True, pos_encodings="none"),
    "learned positions, no puzzle embedding": dict(pos_encodings="learned", puzzle_emb_ndim=0),
}


@pytest.mark.parametrize("variant", TRM_VARIANTS)
def test_trm_one_segment_matches_hand_written_equations_and_its_gradient(variant):
    cfg = {**TINY_TRM, **TRM_VARIANTS[variant]}
    model = tiny_model(**cfg)
    outputs, new_carry, (data, y, z) = one_segment(model, SEQ_LEN + cfg["puzzle_emb_len"])
    weights, rows = oracle_leaves(model, data)
    expected = h_trm_segment(weights, rows, data, y, z, cfg)
    logits, q_halt, q_continue, answer, latent = expected

    tol = dict(rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(outputs["logits"], logits, **tol)
    torch.testing.assert_close(outputs["q_halt_logits"], q_halt, **tol)
    torch.testing.assert_close(outputs["q_continue_logits"], q_continue, **tol)
    torch.testing.assert_close(new_carry.z_high, answer.detach(), **tol)   # y rides in z_high ...
    torch.testing.assert_close(new_carry.z_low, latent.detach(), **tol)    # ... z in z_low
    assert new_carry.steps.tolist() == [3, 1, 4]
    assert not new_carry.z_high.requires_grad and not new_carry.z_low.requires_grad
    assert "target_q_continue" not in outputs  # no continue loss, no extra forward

    leaves, last_recursion, objective = assert_gradients_match(model, outputs, expected, weights, rows)
    # The rule is distinguishable: gradient through every recursion, or HRM's one-step rule,
    # gives other gradients for the network's weights.
    first_block = list(weights).index("inner.L_level.layers.0.mlp.gate_up_proj.weight")
    for other_rule in ("full", "one-step"):
        other = h_trm_segment(weights, rows, data, y, z, cfg, other_rule)
        other_grads = torch.autograd.grad(objective(*other[:3]), leaves, allow_unused=True)
        assert not torch.allclose(other_grads[first_block], last_recursion[first_block], rtol=1e-3)


def test_trm_halts_when_q_halt_is_positive_whatever_q_continue_says():
    batch = random_batch(0)
    model = tiny_model(**TINY_TRM)
    set_q_bias(model, 0.5, 5.0)   # HRM's rule (q_halt > q_continue) would continue
    carry, _ = model(model.initial_carry(batch), batch)
    assert carry.halted.all()
    set_q_bias(model, -0.5, -5.0)  # HRM's rule would halt
    carry, _ = model(model.initial_carry(batch), batch)
    assert not carry.halted.any()
    # no_ACT_continue false: HRM's halting and its continue target, on TRM's recursion.
    model = tiny_model(**TINY_TRM, no_ACT_continue=False)
    set_q_bias(model, -0.5, -5.0)
    carry, outputs = model(model.initial_carry(batch), batch)
    assert carry.halted.all() and "target_q_continue" in outputs


def test_trm_evaluation_runs_halt_max_steps_segments():
    model = tiny_model(**TINY_TRM).eval()
    set_q_bias(model, 5.0, -5.0)
    batch = random_batch(0)
    carry = model.initial_carry(batch)
    with torch.no_grad():
        for segment in range(1, TINY_TRM["halt_max_steps"] + 1):
            carry, _ = model(carry, batch)
            assert carry.halted.tolist() == [segment == TINY_TRM["halt_max_steps"]] * BATCH


def test_trm_published_configs_have_the_papers_parameter_counts():
    # Sudoku-Extreme shapes; TRM reports 7M parameters with attention, 5M with the token MLP.
    shapes = dict(seq_len=81, vocab_size=11, num_puzzle_identifiers=1, batch_size=2)
    hidden, mlp = 512, 1536
    channel_mlp = 3 * hidden * mlp
    io = 2 * 11 * hidden + (2 * hidden + 2)  # embedding + lm head; q head
    attention = build_model({"name": "trm"}, **shapes)
    assert sum(p.numel() for p in attention.parameters()) == 2 * (4 * hidden * hidden + channel_mlp) + io == 6_828_034
    token_mlp = build_model({"name": "trm", "mlp_t": True, "pos_encodings": "none"}, **shapes)
    positions = 81 + 16  # puzzle_emb_len 16; the position MLP's width: 2/3 * 4 * 97 -> 512
    assert sum(p.numel() for p in token_mlp.parameters()) == 2 * (3 * positions * 512 + channel_mlp) + io == 5_028_866


def test_trm_config_checks():
    shapes = dict(seq_len=4, vocab_size=3, num_puzzle_identifiers=2, batch_size=1)
    small = dict(name="trm", hidden_size=8, num_heads=2)
    # puzzle_emb_len 0: as many positions as the puzzle vector needs (as HRM).
    model = build_model({**small, "puzzle_emb_ndim": 20, "puzzle_emb_len": 0}, **shapes)
    assert model.config.puzzle_emb_len == 3
    with pytest.raises(HrmError, match="does not fit"):
        build_model({**small, "puzzle_emb_ndim": 20, "puzzle_emb_len": 2}, **shapes)
    with pytest.raises(HrmError, match="mlp_t must be true or false"):
        build_model({**small, "mlp_t": 1}, **shapes)
    with pytest.raises(HrmError, match="'H_level'"):
        build_model({**small, "H_level": 2}, **shapes)
    with pytest.raises(HrmError, match="pos_encodings"):  # "none" is TRM's only
        build_model({"name": "hrm", "pos_encodings": "none"}, **shapes)


# ---------------------------------------------------------------------------------------------
# The transformer baseline

TINY_TRANSFORMER = dict(name="transformer", H_layers=2, L_layers=1, hidden_size=16, num_heads=2, expansion=2.0,
                        puzzle_emb_ndim=20, halt_max_steps=4, halt_exploration_prob=0.0, forward_dtype="float32")


@pytest.mark.parametrize("arch", [
    {},                                                               # the paper's model
    dict(H_layers=3, L_layers=1, hidden_size=64, num_heads=4, pos_encodings="learned", puzzle_emb_ndim=100),
])
def test_transformer_has_hrms_parameter_count(arch):
    shapes = dict(seq_len=30, vocab_size=12, num_puzzle_identifiers=5, batch_size=2)
    hrm = build_model({**arch, "name": "hrm"}, **shapes)
    baseline = build_model({**arch, "name": "transformer"}, **shapes)
    count = sum(p.numel() for p in baseline.parameters())
    assert count == sum(p.numel() for p in hrm.parameters())
    layers = arch.get("H_layers", 4) + arch.get("L_layers", 4)
    assert len(baseline.inner.blocks.layers) == layers
    assert baseline.puzzle_emb.weights.shape == hrm.puzzle_emb.weights.shape


@pytest.mark.parametrize("mlp_t", [False, True])
def test_transformer_segment_is_one_pass_of_all_blocks_with_full_gradient(mlp_t):
    model = tiny_model(**TINY_TRANSFORMER, mlp_t=mlp_t)
    puzzle_len = 2  # ceil(20 / 16)
    outputs, new_carry, (data, state, z_low) = one_segment(model, SEQ_LEN + puzzle_len)
    weights, rows = oracle_leaves(model, data)
    x = h_embed(weights, rows, data["inputs"], 16, puzzle_len, learned=False)
    # All 2 + 1 blocks as one stack, applied once.
    state = h_net(state, x, weights, {**TINY_TRANSFORMER, "L_layers": 3, "mlp_t": mlp_t}, stack="inner.blocks.layers.")
    logits = (state @ weights["inner.lm_head.weight"].T)[:, puzzle_len:]
    q = state[:, 0] @ weights["inner.q_head.weight"].T + weights["inner.q_head.bias"]
    expected = (logits, q[:, 0], q[:, 1])

    tol = dict(rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(outputs["logits"], logits, **tol)
    torch.testing.assert_close(outputs["q_halt_logits"], q[:, 0], **tol)
    torch.testing.assert_close(new_carry.z_high, state.detach(), **tol)
    torch.testing.assert_close(new_carry.z_low, z_low, rtol=0, atol=0)  # carried as it came in
    assert "target_q_continue" in outputs  # HRM's ACT loop, continue target included
    assert_gradients_match(model, outputs, expected, weights, rows)
