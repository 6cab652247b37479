"""Token losses (stablemax, softmax) and the ACT loss of one segment (SPEC 4)."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from hrm.common import HrmError
from hrm.eval.batches import IGNORE_LABEL_ID
from hrm.eval.inference import sequence_accuracy  # the accuracy rules of training and evaluation alike


def stablemax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor,
                            ignore_index: int = IGNORE_LABEL_ID) -> torch.Tensor:
    """Per-token -log stablemax(logits)[label], 0 where label == ignore_index.

    stablemax(x)_i = s(x_i) / sum_j s(x_j) with s(x) = x + 1 for x >= 0 and 1 / (1 - x) below:
    linear rather than exponential growth, which avoids the softmax collapse seen when logits grow
    large late in training (Prieto et al. 2025). Computed in float64 (float32 on MPS, which has
    no float64), as the reference does.
    """
    dtype = torch.float32 if logits.device.type == "mps" else torch.float64
    x = logits.to(dtype)
    s = torch.where(x >= 0, x + 1, 1 / (1 - x.clamp(max=0)))  # clamp: no inf in the unused branch
    log_probs = torch.log(s / s.sum(dim=-1, keepdim=True))
    scored = labels != ignore_index
    picked = log_probs.gather(-1, torch.where(scored, labels, 0).long().unsqueeze(-1)).squeeze(-1)
    return torch.where(scored, -picked, 0)


def softmax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor,
                          ignore_index: int = IGNORE_LABEL_ID) -> torch.Tensor:
    """Per-token softmax cross-entropy in float32, 0 where label == ignore_index."""
    flat = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.long().reshape(-1),
                           ignore_index=ignore_index, reduction="none")
    return flat.view(labels.shape)


TOKEN_LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "stablemax_cross_entropy": stablemax_cross_entropy,
    "softmax_cross_entropy": softmax_cross_entropy,
}


def act_loss(outputs: dict[str, torch.Tensor], carry, loss_type: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss of one ACT segment and its metric sums.

    loss = sum over the batch of [mean token loss over the sequence's scored positions]
           + 0.5 * (sum BCE(q_halt, sequence fully correct) + sum BCE(q_continue, target_q_continue))
    (the loop divides by the global batch size). Sequences without scored positions (padding)
    add nothing to the token term.

    metrics: detached SUMS over the sequences that halted in this segment and have at least one
    scored position (divide by metrics["count"]): count, accuracy (per-sequence token accuracy),
    exact_accuracy, q_halt_accuracy ((q_halt >= 0) == fully correct), steps, lm_loss,
    q_halt_loss, q_continue_loss. The reference sums its logged lm/q losses over *all* slots
    but divides by the halted count; here every metric uses the same halted set, so a mean is a
    mean (the two agree in evaluation, where all slots halt together).
    """
    if loss_type not in TOKEN_LOSSES:
        raise HrmError(f"unknown loss_type {loss_type!r} (expected one of {', '.join(TOKEN_LOSSES)})")
    labels = carry.current_data["labels"]
    logits = outputs["logits"]
    q_halt = outputs["q_halt_logits"]

    with torch.no_grad():
        rules = sequence_accuracy(logits.argmax(-1), labels, q_halt)
        scored_count, seq_correct = rules["scored_count"], rules["exact"]
        in_metrics = carry.halted & (scored_count > 0)

    # Per-sequence mean over the scored positions (clamp: padding rows divide 0 by 1).
    token_loss = TOKEN_LOSSES[loss_type](logits, labels, IGNORE_LABEL_ID)
    seq_lm_loss = token_loss.sum(-1) / scored_count.clamp_min(1)
    seq_q_halt_loss = F.binary_cross_entropy_with_logits(q_halt, seq_correct.to(q_halt.dtype), reduction="none")
    if "target_q_continue" in outputs:
        seq_q_continue_loss = F.binary_cross_entropy_with_logits(
            outputs["q_continue_logits"], outputs["target_q_continue"], reduction="none")
    else:
        seq_q_continue_loss = torch.zeros_like(seq_q_halt_loss)
    loss = seq_lm_loss.sum() + 0.5 * (seq_q_halt_loss.sum() + seq_q_continue_loss.sum())

    def halted_sum(values: torch.Tensor) -> torch.Tensor:
        return torch.where(in_metrics, values.detach(), 0).sum()

    metrics = {
        "count": in_metrics.sum(),
        "accuracy": halted_sum(rules["token_accuracy"]),
        "exact_accuracy": halted_sum(seq_correct),
        "q_halt_accuracy": halted_sum(rules["q_halt_correct"]),
        "steps": halted_sum(carry.steps),
        "lm_loss": halted_sum(seq_lm_loss),
        "q_halt_loss": halted_sum(seq_q_halt_loss),
        "q_continue_loss": halted_sum(seq_q_continue_loss),
    }
    return loss, metrics
