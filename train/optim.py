"""Optimisers written in plain PyTorch (no CUDA extension to build) and the learning-rate schedule.

- AdamAtan2: Adam with atan2(m, sqrt(v)) in place of m / (sqrt(v) + eps) - bounded and scale
  invariant, no epsilon to tune - as the reference's fused kernel computes it (SPEC 4).
- SparseSignSGD: sign-SGD on the rows of the puzzle-embedding table that the last forward used.
"""
from __future__ import annotations

import math

import torch
import torch.distributed as dist

from hrm.models.layers import SparsePuzzleEmbedding


class AdamAtan2(torch.optim.Optimizer):
    """Per step t (from 1), for every parameter p with gradient g:
        p <- p * (1 - lr * wd)                         decoupled weight decay
        m <- m + (1 - b1) (g - m);  v <- v + (1 - b2) (g^2 - v)
        p <- p - lr / (1 - b1^t) * atan2(m, sqrt(v) / sqrt(1 - b2^t))
    """

    def __init__(self, params, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.95),
                 weight_decay: float = 0.1, foreach_atan: bool = False):
        # foreach_atan: the all-foreach route on CPU too (it always runs on other devices).
        self.foreach_atan = foreach_atan
        if lr < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"invalid AdamAtan2 settings: lr={lr}, betas={betas}, weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001 - torch.optim.Optimizer's signature
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            # Parameters that share a step count share their bias corrections: one foreach update
            # each (normally a single one; a parameter first trained later has its own count).
            by_step: dict[int, list[torch.Tensor]] = {}
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    # A Python int: no device tensor, so no host sync for the bias corrections.
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                by_step.setdefault(state["step"], []).append(p)
            for t, params in by_step.items():
                self._update(params, group, t)
        return loss

    def _update(self, params: list[torch.Tensor], group: dict, t: int) -> None:
        """The formula above for all `params` at step t in multi-tensor (foreach) ops: a few
        launches instead of ~7 kernels per tensor (~36 tensors at the paper size) on a GPU."""
        lr, wd = group["lr"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        grads = [p.grad for p in params]
        exp_avgs = [self.state[p]["exp_avg"] for p in params]
        exp_avg_sqs = [self.state[p]["exp_avg_sq"] for p in params]
        torch._foreach_mul_(params, 1 - lr * wd)
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        # v + (1 - b2)(g^2 - v) as b2 v + (1 - b2) g g: in place, no g^2 temporary.
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
        denominators = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_div_(denominators, math.sqrt(1 - beta2 ** t))
        step_size = -lr / (1 - beta1 ** t)
        if params[0].device.type == "cpu" and not self.foreach_atan:
            # On CPU a foreach op is a loop over the tensors anyway and the update is memory-bound:
            # the fused atan2, written into the denominators, makes fewer passes than the
            # foreach atan route below.
            for p, m, d in zip(params, exp_avgs, denominators):
                p.add_(torch.atan2(m, d, out=d), alpha=step_size)
            return
        # There is no foreach atan2; as the denominator is >= 0, atan2(m, d) = atan(m / d). With d
        # raised to the smallest normal float, m = d = 0 (a weight that never had a gradient)
        # gives atan(0) = 0 as atan2(0, 0) does, and m != 0 = d (g^2 underflowed) gives +-pi/2.
        torch._foreach_clamp_min_(denominators, torch.finfo(params[0].dtype).tiny)
        torch._foreach_reciprocal_(denominators)
        torch._foreach_mul_(denominators, exp_avgs)
        torch._foreach_atan_(denominators)
        torch._foreach_add_(params, denominators, alpha=step_size)


def gather_across_ranks(ids: torch.Tensor, grads: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All ranks' (ids, grad rows) concatenated when torch.distributed runs with several ranks,
    so every rank applies the same update to its copy of the table; the inputs otherwise.
    Every rank must hold the same number of rows (the loader gives equal local batches)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return ids, grads
    world = dist.get_world_size()
    all_ids = [torch.empty_like(ids) for _ in range(world)]
    all_grads = [torch.empty_like(grads) for _ in range(world)]
    dist.all_gather(all_ids, ids.contiguous())
    dist.all_gather(all_grads, grads.contiguous())
    return torch.cat(all_ids), torch.cat(all_grads)


class SparseSignSGD(torch.optim.Optimizer):
    """Sign-SGD with decoupled weight decay on the puzzle-embedding rows of the last forward:
        rows <- rows * (1 - lr * wd) - lr * sign(sum of the row's gradients in the batch)
    Rows whose id is not in the batch are untouched (no decay either). With very sparse
    gradients Adam behaves like sign-SGD, and sign-SGD needs no per-row state.

    The table and the gathered rows are read from the module at each step, so moving the model
    to another device after building the optimiser is fine.
    """

    def __init__(self, puzzle_emb: SparsePuzzleEmbedding, lr: float = 1e-2, weight_decay: float = 0.1):
        if lr < 0 or weight_decay < 0:
            raise ValueError(f"invalid SparseSignSGD settings: lr={lr}, weight_decay={weight_decay}")
        # The table is registered as the group's only "param" so that param_groups, lr setting and
        # state_dict behave as for any optimiser; the update itself goes through puzzle_emb.
        super().__init__([puzzle_emb.weights], dict(lr=lr, weight_decay=weight_decay))
        self.puzzle_emb = puzzle_emb

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001
        grads = self.puzzle_emb.local_weights.grad
        if grads is None:
            return None
        ids, grads = gather_across_ranks(self.puzzle_emb.local_ids, grads)
        ids = ids.long()
        # Sum the gradients of equal ids with shapes fixed by the batch, not by how many distinct
        # ids it holds (unique() would make the device wait for the host every step): every slot
        # adds its row into the buffer row of its id's first position in sorted order, then reads
        # that sum back; duplicates of an id write the same value into the table.
        first_of_id = torch.searchsorted(ids.sort().values, ids)
        summed = torch.zeros_like(grads).index_add_(0, first_of_id, grads)[first_of_id]
        lr, wd = self.param_groups[0]["lr"], self.param_groups[0]["weight_decay"]
        weights = self.puzzle_emb.weights
        weights[ids] = weights[ids] * (1 - lr * wd) - lr * torch.sign(summed).to(weights.dtype)
        return None

    def zero_grad(self, set_to_none: bool = True) -> None:
        grads = self.puzzle_emb.local_weights.grad
        if grads is not None:
            if set_to_none:
                self.puzzle_emb.local_weights.grad = None
            else:
                grads.zero_()


def lr_at(step: int, *, base_lr: float, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Linear warmup from 0 to base_lr over warmup_steps, then a half cosine from base_lr down to
    base_lr * min_ratio at total_steps (min_ratio 1.0 = constant), as the reference schedule;
    past total_steps it stays at the minimum (the reference's cosine would rise again)."""
    if step < warmup_steps:
        return base_lr * step / max(1, warmup_steps)
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return base_lr * (min_ratio + max(0.0, (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))))
