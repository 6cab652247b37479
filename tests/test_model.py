"""The HRM model against a hand-written float64 computation of SPEC 4's equations: one segment's
outputs, which tensors carry gradient (the one-step gradient), refill/reset of slots."""
from __future__ import annotations

import math

import pytest
import torch

from hrm.common import HrmError
from hrm.models import layers
from hrm.models.hrm import HrmAct
from hrm.models.registry import build_model

TINY = dict(H_cycles=2, L_cycles=3, H_layers=2, L_layers=1, hidden_size=16, num_heads=2, expansion=2.0,
            puzzle_emb_ndim=20, halt_max_steps=4, halt_exploration_prob=0.0, forward_dtype="float32")
SEQ_LEN, VOCAB, NUM_IDS, BATCH = 6, 5, 7, 3


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny shapes gain nothing from threads, and on a shared 2-core machine contending OpenMP
    threads make each op ~10x slower; test modules using tiny_model import this fixture."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(**overrides) -> HrmAct:
    torch.manual_seed(0)
    model = build_model({**TINY, **overrides}, seq_len=SEQ_LEN, vocab_size=VOCAB, num_puzzle_identifiers=NUM_IDS,
                        batch_size=BATCH).double()
    with torch.no_grad():
        # Non-zero puzzle rows and Q weights, so that both paths are exercised.
        if model.puzzle_emb is not None:
            model.puzzle_emb.weights.normal_()
        model.inner.q_head.weight.normal_(0, 0.3)
    return model


def random_batch(seed: int, size: int = BATCH) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"inputs": torch.randint(0, VOCAB, (size, SEQ_LEN), generator=g, dtype=torch.int32),
            "labels": torch.randint(0, VOCAB, (size, SEQ_LEN), generator=g),
            "puzzle_identifiers": torch.randint(0, NUM_IDS, (size,), generator=g, dtype=torch.int32)}


# ---------------------------------------------------------------------------------------------
# The hand-written reference: plain tensor ops on a dict of weights, no code from train/.

def h_rmsnorm(x, eps=1e-5):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps)


def h_rope(x, theta=10000.0):
    """Rotate dim i with dim i + d/2 by angle position * theta^(-2i/d). x: [B, S, heads, d]."""
    d = x.shape[-1]
    positions = torch.arange(x.shape[1], dtype=torch.float64)
    angle = positions[:, None] * theta ** (-torch.arange(0, d // 2, dtype=torch.float64) * 2 / d)
    cos, sin = angle.cos()[None, :, None, :], angle.sin()[None, :, None, :]
    a, b = x[..., : d // 2], x[..., d // 2:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


def h_attention(x, w_qkv, w_o, heads, rope):
    batch, positions, hidden = x.shape
    d = hidden // heads
    q, k, v = (x @ w_qkv.T).split(hidden, dim=-1)
    q, k, v = (t.reshape(batch, positions, heads, d) for t in (q, k, v))
    if rope:
        q, k = h_rope(q), h_rope(k)
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(d)
    weights = torch.exp(scores - scores.amax(-1, keepdim=True))
    weights = weights / weights.sum(-1, keepdim=True)
    out = torch.einsum("bhqk,bkhd->bqhd", weights, v).reshape(batch, positions, hidden)
    return out @ w_o.T


def h_block(x, w, prefix, heads, rope):
    x = h_rmsnorm(x + h_attention(x, w[prefix + "self_attn.qkv_proj.weight"], w[prefix + "self_attn.o_proj.weight"],
                                  heads, rope))
    gate_up = w[prefix + "mlp.gate_up_proj.weight"]
    inner = gate_up.shape[0] // 2
    gate, up = x @ gate_up[:inner].T, x @ gate_up[inner:].T
    mlp = (gate * torch.sigmoid(gate) * up) @ w[prefix + "mlp.down_proj.weight"].T
    return h_rmsnorm(x + mlp)


def h_swiglu(x, gate_up, down):
    inner = gate_up.shape[0] // 2
    gate, up = x @ gate_up[:inner].T, x @ gate_up[inner:].T
    return (gate * torch.sigmoid(gate) * up) @ down.T


def h_token_mlp_block(x, w, prefix):
    """The mlp_t block (TRM's; arch.mlp_t in every architecture): an MLP across positions (normalised over positions, as the reference),
    then the usual channel MLP."""
    t = x.transpose(1, 2)
    t = h_rmsnorm(t + h_swiglu(t, w[prefix + "mlp_t.gate_up_proj.weight"], w[prefix + "mlp_t.down_proj.weight"]))
    x = t.transpose(1, 2)
    return h_rmsnorm(x + h_swiglu(x, w[prefix + "mlp.gate_up_proj.weight"], w[prefix + "mlp.down_proj.weight"]))


def h_level(state, injection, w, level, num_layers, heads, rope, mlp_t=False):
    x = state + injection
    for i in range(num_layers):
        prefix = f"inner.{level}_level.layers.{i}."
        x = h_token_mlp_block(x, w, prefix) if mlp_t else h_block(x, w, prefix, heads, rope)
    return x


def h_segment(w, puzzle_rows, batch, z_high, z_low, cfg, gradient="one-step"):
    """One segment: -> (logits, q_halt, q_continue, z_high, z_low). gradient="one-step" cuts the
    graph (detach) in front of the last L and H update; "full" keeps every step in the graph."""
    hidden, heads, rope = cfg["hidden_size"], cfg["num_heads"], cfg.get("pos_encodings", "rope") == "rope"
    tokens = w["inner.embed_tokens.embedding_weight"][batch["inputs"].long()]
    puzzle_len = -(-cfg["puzzle_emb_ndim"] // hidden)
    padded = torch.cat([puzzle_rows, puzzle_rows.new_zeros(len(puzzle_rows), puzzle_len * hidden - puzzle_rows.shape[1])], 1)
    x = torch.cat([padded.reshape(-1, puzzle_len, hidden), tokens], dim=1)
    if not rope:
        x = (x + w["inner.embed_pos.embedding_weight"]) / math.sqrt(2)
    x = x * math.sqrt(hidden)

    updates = []  # the schedule of updates in order, as ("L"|"H")
    for _ in range(cfg["H_cycles"]):
        updates += ["L"] * cfg["L_cycles"] + ["H"]
    for i, which in enumerate(updates):
        if gradient == "one-step" and i == len(updates) - 2:
            z_high, z_low = z_high.detach(), z_low.detach()
        if which == "L":
            z_low = h_level(z_low, z_high + x, w, "L", cfg["L_layers"], heads, rope, cfg.get("mlp_t", False))
        else:
            z_high = h_level(z_high, z_low, w, "H", cfg["H_layers"], heads, rope, cfg.get("mlp_t", False))
    logits = (z_high @ w["inner.lm_head.weight"].T)[:, puzzle_len:]
    q = z_high[:, 0] @ w["inner.q_head.weight"].T + w["inner.q_head.bias"]
    return logits, q[:, 0], q[:, 1], z_high, z_low


# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pos_encodings, mlp_t", [("rope", False), ("learned", False), ("learned", True)])
def test_one_segment_matches_hand_written_equations_and_one_step_gradient(pos_encodings, mlp_t):
    # mlp_t: HRM with TRM's token-MLP blocks (arch.mlp_t) instead of attention, in both modules.
    model = tiny_model(pos_encodings=pos_encodings, mlp_t=mlp_t)
    cfg = {**TINY, "pos_encodings": pos_encodings, "mlp_t": mlp_t}
    model.train()
    positions = SEQ_LEN + 2  # ceil(20 / 16) puzzle positions
    old_batch, new_batch = random_batch(1), random_batch(2)
    g = torch.Generator().manual_seed(3)
    carry = model.initial_carry(old_batch)
    carry.z_high = torch.randn(BATCH, positions, 16, generator=g, dtype=torch.float64)
    carry.z_low = torch.randn(BATCH, positions, 16, generator=g, dtype=torch.float64)
    carry.steps = torch.tensor([2, 1, 3], dtype=torch.int32)
    carry.halted = torch.tensor([False, True, False])
    carry.current_data = old_batch

    new_carry, outputs = model(carry, new_batch)

    # Oracle: slot 1 halted -> it takes the new batch's example and starts from H_init/L_init.
    data = {k: old_batch[k].clone() for k in old_batch}
    for k in data:
        data[k][1] = new_batch[k][1]
    z_high, z_low = carry.z_high.clone(), carry.z_low.clone()
    z_high[1] = model.inner.H_init.expand(positions, 16)
    z_low[1] = model.inner.L_init.expand(positions, 16)
    weights = {name: p.detach().clone().requires_grad_() for name, p in model.named_parameters()}
    puzzle_rows = model.puzzle_emb.weights[data["puzzle_identifiers"].long()].clone().requires_grad_()
    logits, q_halt, q_continue, ref_high, ref_low = h_segment(weights, puzzle_rows, data, z_high, z_low, cfg)

    tol = dict(rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(outputs["logits"], logits, **tol)
    torch.testing.assert_close(outputs["q_halt_logits"], q_halt, **tol)
    torch.testing.assert_close(outputs["q_continue_logits"], q_continue, **tol)
    torch.testing.assert_close(new_carry.z_high, ref_high.detach(), **tol)
    torch.testing.assert_close(new_carry.z_low, ref_low.detach(), **tol)
    assert torch.equal(new_carry.current_data["inputs"], data["inputs"])
    assert new_carry.steps.tolist() == [3, 1, 4]
    # The carry leaves detached; the Q target comes from a no-grad forward.
    assert not new_carry.z_high.requires_grad and not new_carry.z_low.requires_grad
    assert not outputs["target_q_continue"].requires_grad

    # Gradients: an arbitrary objective of all outputs, through the model and through the oracle.
    r = torch.Generator().manual_seed(4)
    probe = [torch.randn(t.shape, generator=r, dtype=torch.float64) for t in (logits, q_halt, q_continue)]

    def objective(lg, qh, qc):
        return (lg * probe[0]).sum() + (qh * probe[1]).sum() + (qc * probe[2]).sum()

    objective(outputs["logits"], outputs["q_halt_logits"], outputs["q_continue_logits"]).backward()
    leaves = list(weights.values()) + [puzzle_rows]
    one_step = torch.autograd.grad(objective(logits, q_halt, q_continue), leaves, allow_unused=True)
    model_grads = [p.grad for p in model.parameters()] + [model.puzzle_emb.local_weights.grad]
    for name, got, want in zip(list(weights) + ["puzzle rows"], model_grads, one_step):
        want = torch.zeros_like(got) if want is None else want
        torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-10, msg=f"gradient of {name}")

    # The same objective with gradient through every step differs: the test can tell them apart.
    full = h_segment(weights, puzzle_rows, data, z_high, z_low, cfg, gradient="full")
    full_grads = torch.autograd.grad(objective(*full[:3]), leaves, allow_unused=True)
    low_mlp = list(weights).index("inner.L_level.layers.0.mlp.gate_up_proj.weight")
    assert not torch.allclose(full_grads[low_mlp], one_step[low_mlp], rtol=1e-3)


def test_default_config_has_the_papers_27m_parameters():
    # Sudoku-Extreme shapes: 81 cells, vocab 11 (pad + 10 digit tokens), one puzzle identifier.
    model = build_model({"name": "hrm"}, seq_len=81, vocab_size=11, num_puzzle_identifiers=1, batch_size=2)
    hidden, mlp = 512, 1536  # round(4 * 512 * 2/3) = 1365 -> next multiple of 256
    per_block = 4 * hidden * hidden + 3 * hidden * mlp   # qkv + out; gate, up, down
    expected = 8 * per_block + 2 * 11 * hidden + (2 * hidden + 2)  # blocks; embedding + lm head; q head
    assert sum(p.numel() for p in model.parameters()) == expected == 27_275_266
    # Puzzle table, initial states are buffers (trained sparsely / fixed); not in the count.
    assert model.puzzle_emb.weights.shape == (1, 512) and not model.puzzle_emb.weights.any()


def test_initialisation_follows_spec():
    torch.manual_seed(0)
    model = build_model({"hidden_size": 256, "H_layers": 1, "L_layers": 1}, seq_len=10, vocab_size=12,
                        num_puzzle_identifiers=3, batch_size=2)
    qkv = model.inner.H_level.layers[0].self_attn.qkv_proj.weight
    std = 256 ** -0.5
    assert abs(qkv.std().item() - std) < 0.02 * std  # the samples' std is 1/sqrt(fan_in) ...
    assert qkv.abs().max().item() <= 2 * 1.14 * std   # ... cut at 2 std of the widened normal
    assert abs(model.inner.embed_tokens.embedding_weight.std().item() - 1 / 16) < 0.1 / 16
    assert (model.inner.q_head.weight == 0).all() and (model.inner.q_head.bias == -5).all()
    assert abs(model.inner.H_init.std().item() - 1) < 0.3 and model.inner.H_init.abs().max() <= 2.3


def test_registry_rejects_unknown_keys_names_and_bad_values():
    shapes = dict(seq_len=4, vocab_size=3, num_puzzle_identifiers=1, batch_size=1)
    with pytest.raises(HrmError, match="L_cycle"):
        build_model({"L_cycle": 2}, **shapes)
    with pytest.raises(HrmError, match="'gpt'"):
        build_model({"name": "gpt"}, **shapes)
    with pytest.raises(HrmError, match="pos_encodings"):
        build_model({"pos_encodings": "alibi"}, **shapes)
    with pytest.raises(HrmError, match="num_heads"):
        build_model({"hidden_size": 30, "num_heads": 4}, **shapes)
    with pytest.raises(HrmError, match="H_cycles must be an integer"):
        build_model({"H_cycles": "2"}, **shapes)


def test_model_moves_between_dtypes_and_keeps_a_trainable_puzzle_leaf():
    model = tiny_model()  # built float32, moved to float64
    assert model.puzzle_emb.local_weights.is_leaf and model.puzzle_emb.local_weights.dtype == torch.float64
    batch = random_batch(5, size=5)  # a batch size other than the configured one is fine too
    carry, outputs = model(model.initial_carry(batch), batch)
    outputs["logits"].sum().backward()
    assert model.puzzle_emb.local_weights.grad.shape == (5, 20)
    assert torch.equal(model.puzzle_emb.local_ids, batch["puzzle_identifiers"])


def test_attention_backend_falls_back_to_sdpa_and_logs_the_choice(capsys, monkeypatch):
    monkeypatch.setattr(layers, "_logged_backends", set())
    assert layers.attention_backend("cpu", torch.float32) == "sdpa"
    assert "attention backend on cpu: sdpa" in capsys.readouterr().err
    assert layers.attention_backend("cpu", torch.float32) == "sdpa"
    assert capsys.readouterr().err == ""  # logged once
    # Without a GPU build FlashAttention is not importable: CUDA falls back too, and says why.
    if layers._flash_attention() is None:
        assert layers.attention_backend("cuda", torch.bfloat16) == "sdpa"
        assert "not importable" in capsys.readouterr().err
    # With FlashAttention importable it is used on CUDA in half precision only.
    monkeypatch.setattr(layers, "_flash", ("flash_attention_2", None))
    monkeypatch.setattr(layers, "_flash_probed", True)
    assert layers.attention_backend("cuda", torch.bfloat16) == "flash_attention_2"
    assert layers.attention_backend("cuda", torch.float32) == "sdpa"
    assert layers.attention_backend("cpu", torch.bfloat16) == "sdpa"
    assert not layers._use_flash(torch.zeros(1, dtype=torch.bfloat16))  # a CPU tensor


def test_forward_dtype_bfloat16_means_float32_on_cpu():
    model = build_model({**TINY, "forward_dtype": "bfloat16"}, seq_len=SEQ_LEN, vocab_size=VOCAB,
                        num_puzzle_identifiers=NUM_IDS, batch_size=BATCH)
    batch = random_batch(0)
    carry, outputs = model(model.initial_carry(batch), batch)
    assert carry.z_high.dtype == torch.float32 and outputs["logits"].dtype == torch.float32


@pytest.mark.slow
def test_torch_compile_on_cpu_matches_eager():
    model = tiny_model().float().eval()
    compiled = torch.compile(model)
    batch = random_batch(6)
    carry_eager = model.initial_carry(batch)
    carry_compiled = model.initial_carry(batch)
    with torch.no_grad():
        for _ in range(TINY["halt_max_steps"]):
            carry_eager, out_eager = model(carry_eager, batch)
            carry_compiled, out_compiled = compiled(carry_compiled, batch)
            for key in out_eager:
                # float32 with fused kernels: rounding differs, amplified over the recurrence
                torch.testing.assert_close(out_compiled[key], out_eager[key], rtol=1e-3, atol=1e-4)
            assert torch.equal(carry_compiled.halted, carry_eager.halted)
    # Training mode with gradients compiles too (the sparse puzzle rows keep their gradient).
    model.train()
    carry = model.initial_carry(batch)
    carry, outputs = compiled(carry, batch)
    outputs["logits"].sum().backward()
    assert model.puzzle_emb.local_weights.grad is not None
