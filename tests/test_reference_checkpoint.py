"""Checkpoints in the reference code's layout (SPEC 5), written here key by key: they load, the
model computes what hand-written equations compute with those weights, and anything that does
not fit the config or the dataset is a one-line HrmError."""
from __future__ import annotations

import math
import pickle
from pathlib import Path

import pytest
import torch

from hrm.common import HrmError
from tests.test_model import BATCH, NUM_IDS, SEQ_LEN, VOCAB, h_segment, one_thread, random_batch  # noqa: F401
from tests.test_model_trm import h_trm_segment
from hrm.models.reference_checkpoint import load_reference_checkpoint

HIDDEN, INNER = 16, 256  # SwiGLU width: round(2 * 16 * 2/3) = 21, rounded up to a multiple of 256

HRM_CONFIG = """\
arch:
  name: hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1
  loss:
    name: losses@ACTLossHead
    loss_type: softmax_cross_entropy
  halt_exploration_prob: 0.1
  halt_max_steps: 3
  H_cycles: 2
  L_cycles: 3
  H_layers: 2
  L_layers: 1
  hidden_size: 16
  num_heads: 2
  expansion: 2
  puzzle_emb_ndim: ${.hidden_size}
  pos_encodings: rope
  forward_dtype: bfloat16
global_batch_size: 768
lr: 0.0001
puzzle_emb_lr: 0.01
project_name: Sudoku-extreme-1k-aug-1000 ACT-torch
run_name: HierarchicalReasoningModel_ACTV1 amazing-otter
"""

TRM_CONFIG = """\
arch:
  name: recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1
  loss: {name: losses@ACTLossHead, loss_type: stablemax_cross_entropy}
  halt_exploration_prob: 0.1
  halt_max_steps: 16
  H_cycles: 2
  L_cycles: 2
  H_layers: 0
  L_layers: 2
  hidden_size: 16
  num_heads: 2
  expansion: 2
  puzzle_emb_ndim: 16
  puzzle_emb_len: 2
  pos_encodings: none
  mlp_t: true
  no_ACT_continue: true
  forward_dtype: bfloat16
ema: true
ema_rate: 0.999
"""


def random_weights(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(shape, generator=g) / math.sqrt(shape[-1]) for name, shape in shapes.items()}


def block_shapes(prefix: str, token_mixer: str, positions: int = 0) -> dict[str, tuple[int, ...]]:
    shapes = {f"{prefix}mlp.gate_up_proj.weight": (2 * INNER, HIDDEN), f"{prefix}mlp.down_proj.weight": (HIDDEN, INNER)}
    if token_mixer == "attention":
        shapes |= {f"{prefix}self_attn.qkv_proj.weight": (3 * HIDDEN, HIDDEN),
                   f"{prefix}self_attn.o_proj.weight": (HIDDEN, HIDDEN)}
    else:  # TRM's mlp_t: a SwiGLU across positions (width 256 for so few positions)
        shapes |= {f"{prefix}mlp_t.gate_up_proj.weight": (2 * 256, positions),
                   f"{prefix}mlp_t.down_proj.weight": (positions, 256)}
    return shapes


def io_weights(seed: int) -> dict[str, torch.Tensor]:
    weights = random_weights({"inner.embed_tokens.embedding_weight": (VOCAB, HIDDEN),
                              "inner.lm_head.weight": (VOCAB, HIDDEN), "inner.q_head.weight": (2, HIDDEN),
                              "inner.q_head.bias": (2,), "inner.puzzle_emb.weights": (NUM_IDS, HIDDEN)}, seed)
    # The reference creates its initial states in the forward dtype.
    g = torch.Generator().manual_seed(seed + 1)
    weights["inner.H_init"] = torch.randn(HIDDEN, generator=g).bfloat16()
    weights["inner.L_init"] = torch.randn(HIDDEN, generator=g).bfloat16()
    return weights


def hrm_weights() -> dict[str, torch.Tensor]:
    shapes = {}
    for level, layers in (("H", 2), ("L", 1)):
        for i in range(layers):
            shapes |= block_shapes(f"inner.{level}_level.layers.{i}.", "attention")
    return random_weights(shapes, seed=0) | io_weights(seed=1)


def trm_weights() -> dict[str, torch.Tensor]:
    shapes = {}
    for i in range(2):
        shapes |= block_shapes(f"inner.L_level.layers.{i}.", "mlp_t", positions=SEQ_LEN + 2)
    return random_weights(shapes, seed=2) | io_weights(seed=3)


def write_reference_run(folder: Path, weights: dict[str, torch.Tensor], config: str, step: int = 52080) -> Path:
    """As the reference's pretrain.py leaves a run: step_<N> files of the compiled loss head's
    state dict, and all_config.yaml beside them."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({f"_orig_mod.model.{name}": tensor for name, tensor in weights.items()}, folder / f"step_{step}")
    (folder / "all_config.yaml").write_text(config)
    return folder / f"step_{step}"


def load(path, **shapes):
    return load_reference_checkpoint(path, **{**dict(seq_len=SEQ_LEN, vocab_size=VOCAB,
                                                     num_puzzle_identifiers=NUM_IDS, batch_size=BATCH), **shapes})


def first_segment(model, batch):
    """The model's first evaluation segment on `batch` (states start from H_init / L_init)."""
    model = model.double().eval()
    with torch.no_grad():
        return model(model.initial_carry(batch), batch)[1]


def start_states(weights, positions):
    return (weights["inner.H_init"].double().expand(BATCH, positions, HIDDEN),
            weights["inner.L_init"].double().expand(BATCH, positions, HIDDEN))


def test_reference_hrm_checkpoint_loads_and_computes_the_hand_written_segment(tmp_path):
    weights = hrm_weights()
    write_reference_run(tmp_path / "run", weights, HRM_CONFIG, step=100)
    write_reference_run(tmp_path / "run", weights, HRM_CONFIG, step=52080)  # the folder -> newest
    model, arch = load(tmp_path / "run")
    assert arch == dict(name="hrm", loss_type="softmax_cross_entropy", halt_exploration_prob=0.1, halt_max_steps=3,
                        H_cycles=2, L_cycles=3, H_layers=2, L_layers=1, hidden_size=16, num_heads=2, expansion=2,
                        puzzle_emb_ndim=16, pos_encodings="rope", forward_dtype="bfloat16")

    batch = random_batch(0)
    outputs = first_segment(model, batch)
    w = {name: t.double() for name, t in weights.items()}
    cfg = dict(arch, puzzle_emb_ndim=16)
    logits, q_halt, q_continue, _, _ = h_segment(w, w["inner.puzzle_emb.weights"][batch["puzzle_identifiers"].long()],
                                                 batch, *start_states(weights, SEQ_LEN + 1), cfg)
    tol = dict(rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(outputs["logits"], logits, **tol)
    torch.testing.assert_close(outputs["q_halt_logits"], q_halt, **tol)
    torch.testing.assert_close(outputs["q_continue_logits"], q_continue, **tol)


def test_reference_trm_checkpoint_with_token_mlp_loads_and_computes_the_hand_written_segment(tmp_path):
    weights = trm_weights()
    model, arch = load(write_reference_run(tmp_path, weights, TRM_CONFIG))
    assert arch["name"] == "trm" and arch["mlp_t"] is True and arch["puzzle_emb_len"] == 2
    batch = random_batch(1)
    outputs = first_segment(model, batch)
    w = {name: t.double() for name, t in weights.items()}
    logits, q_halt, *_ = h_trm_segment(w, w["inner.puzzle_emb.weights"][batch["puzzle_identifiers"].long()], batch,
                                       *start_states(weights, SEQ_LEN + 2), arch)
    torch.testing.assert_close(outputs["logits"], logits, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(outputs["q_halt_logits"], q_halt, rtol=1e-9, atol=1e-10)


def one_line_error(call, *fragments: str) -> None:
    with pytest.raises(HrmError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message


def test_checkpoints_that_do_not_fit_the_dataset_are_one_line_errors(tmp_path):
    hrm = write_reference_run(tmp_path / "hrm", hrm_weights(), HRM_CONFIG)
    one_line_error(lambda: load(hrm, vocab_size=VOCAB + 7), "vocabulary of 5 tokens", "dataset has a vocabulary of 12")
    one_line_error(lambda: load(hrm, num_puzzle_identifiers=3), f"{NUM_IDS} puzzle identifiers", "dataset has 3")
    trm = write_reference_run(tmp_path / "trm", trm_weights(), TRM_CONFIG)  # positions fixed by the token MLP
    one_line_error(lambda: load(trm, seq_len=SEQ_LEN + 3), f"sequences of {SEQ_LEN} tokens", f"{SEQ_LEN + 3} tokens")


@pytest.mark.parametrize("change, fragments", [
    (lambda w: w.pop("inner.q_head.bias"), ["missing: inner.q_head.bias", "unexpected: none"]),
    (lambda w: w.update({"inner.H_level.layers.2.mlp.down_proj.weight": torch.zeros(HIDDEN, INNER)}),
     ["unexpected: inner.H_level.layers.2.mlp.down_proj.weight"]),
    (lambda w: w.update({"inner.lm_head.weight": torch.zeros(VOCAB, HIDDEN + 1)}), ["inner.lm_head.weight", "[5, 17]"]),
])
def test_weights_that_do_not_fit_the_config_are_one_line_errors(tmp_path, change, fragments):
    weights = hrm_weights()
    change(weights)
    one_line_error(lambda: load(write_reference_run(tmp_path, weights, HRM_CONFIG)), *fragments)


@pytest.mark.parametrize("edit, fragments", [
    (("  num_heads: 2\n", "  num_heads: 2\n  H_levels: 3\n"), ["unknown arch key 'H_levels'"]),
    (("hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1", "gpt@GPT2"), ["'gpt@GPT2' is not a model"]),
    (("  num_heads: 2\n", "  num_heads: 2\n  causal: true\n"), ["arch.causal"]),
    (("  num_heads: 2\n", "  num_heads: 2\n  mlp_t: false\n  causal: false\n"), []),  # neutral: loads
    (("    loss_type: softmax_cross_entropy\n", ""), ["no loss_type"]),
    (("pos_encodings: rope", "pos_encodings: alibi"), ["all_config.yaml", "pos_encodings"]),
    (("arch:", "arch: [1]\nold:"), ["no `arch` mapping"]),
])
def test_reference_configs_are_mapped_or_rejected_by_key(tmp_path, edit, fragments):
    path = write_reference_run(tmp_path, hrm_weights(), HRM_CONFIG.replace(*edit))
    if fragments:
        one_line_error(lambda: load(path), *fragments)
    else:
        load(path)


def test_missing_or_unreadable_files_are_one_line_errors(tmp_path):
    one_line_error(lambda: load(tmp_path / "nope"), "does not exist")
    one_line_error(lambda: load(tmp_path), "no step_<N>")
    path = write_reference_run(tmp_path / "a", hrm_weights(), HRM_CONFIG)
    (tmp_path / "a" / "all_config.yaml").unlink()
    one_line_error(lambda: load(path), "all_config.yaml")
    path = write_reference_run(tmp_path / "b", hrm_weights(), HRM_CONFIG)
    path.write_bytes(b"not a checkpoint")
    one_line_error(lambda: load(path), "not a readable PyTorch state dict")
    # A pickle that would build an arbitrary object is refused, not run.
    path.write_bytes(pickle.dumps({"x": Path("/")}, protocol=2))
    one_line_error(lambda: load(path), "not a readable PyTorch state dict")
