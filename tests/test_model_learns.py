"""End to end on a toy task: each architecture + ACT loss + both optimisers + schedule learn (slow;
the parts are covered by the fast tests in test_model*.py, test_losses.py and test_optim.py)."""
from __future__ import annotations

import pytest
import torch

from hrm.train.losses import act_loss
from hrm.train.optim import AdamAtan2, SparseSignSGD, lr_at
from hrm.models.registry import build_model

VOCAB, SEQ_LEN, BATCH = 6, 8, 64


def neighbour_sum_batch(generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Tokens 1..5; each label is (cell + its left neighbour, cyclically) mod 5, as a token 1..5:
    every position needs attention to another one, and labels mostly differ from inputs."""
    x = torch.randint(1, VOCAB, (BATCH, SEQ_LEN), generator=generator)
    y = 1 + (x - 1 + x.roll(1, dims=1) - 1) % (VOCAB - 1)
    return {"inputs": x.int(), "labels": y, "puzzle_identifiers": torch.zeros(BATCH, dtype=torch.int32)}


@pytest.mark.slow
@pytest.mark.parametrize("name, extra, min_accuracy", [
    ("hrm", {}, 0.9),
    ("trm", {"H_cycles": 2, "puzzle_emb_len": 1}, 0.85),  # TRM's T = 2 recursions of n = 2
    ("transformer", {}, 0.9),
])
def test_tiny_model_learns_a_neighbour_sum_task(name, extra, min_accuracy):
    torch.manual_seed(0)
    torch.set_num_threads(1)  # tiny matmuls: threads only contend on a shared machine
    arch = {**dict(name=name, H_cycles=1, L_cycles=2, H_layers=1, L_layers=1, hidden_size=32, num_heads=2,
                   expansion=2.0, puzzle_emb_ndim=32, halt_max_steps=2, halt_exploration_prob=0.1,
                   forward_dtype="float32"), **extra}
    model = build_model(arch, seq_len=SEQ_LEN, vocab_size=VOCAB, num_puzzle_identifiers=1, batch_size=BATCH)
    dense = AdamAtan2(model.parameters(), lr=3e-3, weight_decay=0.1)
    sparse = SparseSignSGD(model.puzzle_emb, lr=1e-2, weight_decay=0.1)
    data = torch.Generator().manual_seed(1)
    batch = neighbour_sum_batch(data)
    carry = model.initial_carry(batch)
    steps = 250
    for step in range(steps):
        dense.param_groups[0]["lr"] = lr_at(step, base_lr=3e-3, warmup_steps=20, total_steps=steps, min_ratio=0.1)
        carry, outputs = model(carry, neighbour_sum_batch(data))
        loss, _ = act_loss(outputs, carry, "stablemax_cross_entropy")
        (loss / BATCH).backward()
        for optimiser in (dense, sparse):
            optimiser.step()
            optimiser.zero_grad()

    model.eval()
    test = neighbour_sum_batch(torch.Generator().manual_seed(99))
    with torch.no_grad():
        carry = model.initial_carry(test)
        for _ in range(arch["halt_max_steps"]):
            carry, outputs = model(carry, test)
    accuracy = (outputs["logits"].argmax(-1) == test["labels"]).float().mean().item()
    assert accuracy > min_accuracy  # chance: 0.2
