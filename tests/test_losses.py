"""Token losses and the ACT loss against hand computations."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from hrm.common import HrmError
from hrm.eval.batches import IGNORE_LABEL_ID
from hrm.train.losses import act_loss, softmax_cross_entropy, stablemax_cross_entropy


def hand_stablemax_nll(row: list[float], label: int) -> float:
    s = [x + 1 if x >= 0 else 1 / (1 - x) for x in row]
    return -math.log(s[label] / sum(s))


def hand_softmax_nll(row: list[float], label: int) -> float:
    return -(row[label] - math.log(sum(math.exp(x) for x in row)))


def test_stablemax_and_softmax_cross_entropy_match_hand_computation():
    logits = torch.tensor([[[2.0, -1.0, 0.5, -3.0], [0.0, 0.0, 0.0, 0.0], [-0.5, 7.0, 1.0, -2.0]]])
    labels = torch.tensor([[0, 3, IGNORE_LABEL_ID]])
    stable = stablemax_cross_entropy(logits, labels)
    soft = softmax_cross_entropy(logits, labels)
    assert stable.dtype == torch.float64 and stable.shape == (1, 3)
    for position in range(2):
        row, label = logits[0, position].tolist(), labels[0, position].item()
        assert stable[0, position].item() == pytest.approx(hand_stablemax_nll(row, label), rel=1e-12)
        assert soft[0, position].item() == pytest.approx(hand_softmax_nll(row, label), rel=1e-6)
    assert stable[0, 2].item() == 0 and soft[0, 2].item() == 0  # ignored position
    # Stablemax is finite where softmax saturates, and has gradient on both branches.
    big = torch.tensor([[[1e4, -1e4, 0.0]]], requires_grad=True)
    loss = stablemax_cross_entropy(big, torch.tensor([[1]]))
    assert math.isfinite(loss.item()) and loss.item() == pytest.approx(hand_stablemax_nll([1e4, -1e4, 0.0], 1))
    loss.backward()
    assert torch.isfinite(big.grad).all() and (big.grad != 0).all()


def make_case():
    """3 sequences x 4 positions, vocab 3; sequence 2 is padding (no scored positions)."""
    labels = torch.tensor([[0, 1, 2, IGNORE_LABEL_ID],
                           [2, 2, IGNORE_LABEL_ID, IGNORE_LABEL_ID],
                           [IGNORE_LABEL_ID] * 4])
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, 3, generator=g, dtype=torch.float64)
    logits[0, 0] = torch.tensor([3.0, 0, 0])   # sequence 0: positions 0, 1, 2 predicted right
    logits[0, 1] = torch.tensor([0, 3.0, 0])
    logits[0, 2] = torch.tensor([0, 0, 3.0])
    logits[1, 0] = torch.tensor([0, 0, 3.0])   # sequence 1: position 0 right, 1 wrong
    logits[1, 1] = torch.tensor([3.0, 0, 0])
    outputs = {"logits": logits.requires_grad_(),
               "q_halt_logits": torch.tensor([0.5, -0.2, 1.0], dtype=torch.float64),
               "q_continue_logits": torch.tensor([-1.0, 0.3, 0.0], dtype=torch.float64),
               "target_q_continue": torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)}
    carry = SimpleNamespace(current_data={"labels": labels}, halted=torch.tensor([True, True, True]),
                            steps=torch.tensor([3, 5, 16], dtype=torch.int32))
    return outputs, carry


def bce(logit: float, target: float) -> float:
    p = 1 / (1 + math.exp(-logit))
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


@pytest.mark.parametrize("loss_type,nll", [("stablemax_cross_entropy", hand_stablemax_nll),
                                           ("softmax_cross_entropy", hand_softmax_nll)])
def test_act_loss_scaling_and_metric_sums(loss_type, nll):
    outputs, carry = make_case()
    loss, metrics = act_loss(outputs, carry, loss_type)
    rows = outputs["logits"].detach().tolist()
    lm = [sum(nll(rows[0][i], label) for i, label in enumerate([0, 1, 2])) / 3,
          sum(nll(rows[1][i], label) for i, label in enumerate([2, 2])) / 2,
          0.0]
    correct = [1.0, 0.0, 1.0]  # padding counts as "fully correct" for the q_halt target (as the reference)
    q_halt = [bce(q, c) for q, c in zip([0.5, -0.2, 1.0], correct)]
    q_cont = [bce(q, t) for q, t in zip([-1.0, 0.3, 0.0], [0.25, 0.5, 0.75])]
    assert loss.item() == pytest.approx(sum(lm) + 0.5 * (sum(q_halt) + sum(q_cont)), rel=1e-6)
    # Metrics: sums over halted sequences with something to score (not the padding row).
    assert metrics["count"].item() == 2
    assert metrics["accuracy"].item() == pytest.approx(1.0 + 0.5)
    assert metrics["exact_accuracy"].item() == 1
    assert metrics["q_halt_accuracy"].item() == 2  # seq 0: 0.5 >= 0 and right; seq 1: -0.2 < 0 and wrong
    assert metrics["steps"].item() == 3 + 5
    assert metrics["lm_loss"].item() == pytest.approx(lm[0] + lm[1], rel=1e-6)
    assert metrics["q_halt_loss"].item() == pytest.approx(q_halt[0] + q_halt[1], rel=1e-6)
    assert metrics["q_continue_loss"].item() == pytest.approx(q_cont[0] + q_cont[1], rel=1e-6)
    assert all(not value.requires_grad for value in metrics.values())
    loss.backward()
    assert outputs["logits"].grad[2].abs().sum() == 0  # padding contributes no gradient

    # Only halted sequences enter the metrics; the loss still covers every slot.
    carry.halted = torch.tensor([False, True, True])
    loss2, metrics = act_loss({k: v.detach() for k, v in outputs.items()}, carry, loss_type)
    assert metrics["count"].item() == 1 and metrics["exact_accuracy"].item() == 0
    assert metrics["q_halt_accuracy"].item() == 1
    assert metrics["steps"].item() == 5 and loss2.item() == pytest.approx(loss.item())


def test_act_loss_without_q_continue_target_and_unknown_type():
    outputs, carry = make_case()
    del outputs["target_q_continue"]
    loss, metrics = act_loss(outputs, carry, "softmax_cross_entropy")
    assert metrics["q_continue_loss"].item() == 0
    with pytest.raises(HrmError, match="loss_type"):
        act_loss(outputs, carry, "focal")
