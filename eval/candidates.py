"""Test-time compute: several candidate answers per example from one trained model (`hrm eval`).

Generators, combinable (the K = samples x restarts candidates of an example are all the pairs):
  samples K, noise SIGMA    K trajectories with Gaussian noise of std SIGMA added to the states
                            after every update (every L and H step; TRM: every latent and answer
                            update), as PTRM (arXiv 2605.19943) does to a trained TRM
  restarts K, init_std S    K random initial states: H_init / L_init plus noise of std S per
                            position (EqR, arXiv 2605.21488); S = 0 keeps the fixed states
  steps M                   segments at inference (default: the trained halt_max_steps); the
                            HRM paper's "more segments than in training"
  halt "q"                  a candidate stops at the first segment whose Q head says halt
                            (q_halt > q_continue; q_halt > 0 for TRM's halting), up to M;
                            "all" (default) runs all M segments, as plain evaluation does
Augmented versions of a puzzle and several checkpoints are further candidates; eval.vote ranks
them all together.

The K candidates of an example run side by side in one batch (rows example-major: example i,
candidate j at row i*K + j), chunked to at most `max_rows` rows per forward. Every segment's
answers are returned, so that the accuracy after each segment comes out of one pass.

Noise comes from a torch.Generator seeded by `seed` and drawn chunk by chunk: the same seed, batch
size and number of processes give the same candidates. With K = 1, no noise and no restart
(CandidateSpec()), the forward passes are exactly the ACT wrapper's in evaluation mode.

This is the one evaluation loop: `hrm eval` runs it with its candidates, the trainer's periodic
evaluation (eval.inference.evaluate) with CandidateSpec(). The answers stay on the model's
device, so that the trainer sums its metrics there without reading anything back inside the loop;
`hrm eval` takes them to the host (SegmentAnswers.numpy).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch
from torch import nn

from hrm.common import HrmError
from hrm.eval.candidate_spec import CandidateSpec
from hrm.common.prefetch import prefetched
from hrm.eval.batches import EvalBatch, as_torch, eval_batches
from hrm.common.distributed import DistInfo

if TYPE_CHECKING:
    from hrm.builders.dataset import Split


@dataclass
class SegmentAnswers:
    """The candidates' answers after one segment (rows example-major): torch tensors on the
    model's device as the loop yields them, numpy arrays after `.numpy()`."""

    predictions: torch.Tensor  # uint8 [n, seq_len] argmax tokens
    q_halt: torch.Tensor       # float32 [n] q_halt logit
    residual: torch.Tensor     # float32 [n] RMS change of the states over the segment, ~ ||f(z) - z||
    steps: torch.Tensor        # int32 [n] segments run (fewer than the segment index once halted)

    def numpy(self) -> "SegmentAnswers":
        """The same answers as host numpy arrays (a read-back from the device)."""
        return SegmentAnswers(*(getattr(self, name).cpu().numpy() for name in ANSWER_FIELDS))


ANSWER_FIELDS = ("predictions", "q_halt", "residual", "steps")


def state_residual(z_high: torch.Tensor, z_low: torch.Tensor, new_high: torch.Tensor,
                   new_low: torch.Tensor) -> torch.Tensor:
    """Per row, sqrt(mean (z_high' - z_high)^2 + mean (z_low' - z_low)^2): how far one segment
    moves the states. Near zero at a fixed point of the segment map (EqR's ranking signal)."""
    high = (new_high.float() - z_high.float()).square().mean(dim=(1, 2))
    low = (new_low.float() - z_low.float()).square().mean(dim=(1, 2))
    return (high + low).sqrt()


def _initial_states(model: nn.Module, rows: int, spec: CandidateSpec, generator: torch.Generator | None,
                    device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed initial states broadcast over `rows` candidates, plus, with init_std, one random
    offset per (example, restart), shared by that restart's samples."""
    inner = model.inner
    dtype = inner.compute_dtype(device)
    positions = model.config.seq_len + model.config.puzzle_emb_len
    shape = (rows, positions, model.config.hidden_size)
    z_high = inner.H_init.to(dtype).expand(shape)
    z_low = inner.L_init.to(dtype).expand(shape)
    if spec.init_std > 0:
        starts = rows // spec.samples  # examples x restarts
        draw = lambda: torch.randn((starts, *shape[1:]), generator=generator, dtype=dtype,  # noqa: E731
                                   device=device).repeat_interleave(spec.samples, dim=0)
        z_high = z_high + spec.init_std * draw()
        z_low = z_low + spec.init_std * draw()
    return z_high, z_low


@torch.no_grad()
def run_chunk(model: nn.Module, batch: dict[str, torch.Tensor], spec: CandidateSpec,
              generator: torch.Generator | None) -> Iterator[SegmentAnswers]:
    """The answers after every segment for a batch whose rows are already the candidates, on the
    device. The number of segments is known beforehand (halting on q only freezes a candidate's
    answer), so the loop never asks the device whether it is done. `generator` draws the noise
    and restarts (None when the spec has neither)."""
    inner = model.inner
    device = batch["inputs"].device
    rows = batch["inputs"].shape[0]
    z_high, z_low = _initial_states(model, rows, spec, generator, device)
    halted = torch.zeros(rows, dtype=torch.bool, device=device)
    steps = torch.zeros(rows, dtype=torch.int32, device=device)
    predictions = q_halt = residual = None
    if spec.noise > 0:
        inner.state_noise = lambda state: state + spec.noise * torch.randn(
            state.shape, generator=generator, dtype=state.dtype, device=state.device)
    try:
        for segment in range(spec.steps or int(model.config.halt_max_steps)):
            new_high, new_low, logits, new_q_halt, q_continue = inner(z_high, z_low, batch)
            new_residual = state_residual(z_high, z_low, new_high, new_low)
            tokens = logits.argmax(-1)
            if predictions is None:
                predictions, q_halt, residual = tokens, new_q_halt.float(), new_residual
            else:  # a halted candidate keeps the answer of the segment it halted at
                predictions = torch.where(halted[:, None], predictions, tokens)
                q_halt = torch.where(halted, q_halt, new_q_halt.float())
                residual = torch.where(halted, residual, new_residual)
            steps = torch.where(halted, steps, segment + 1)
            if spec.halt == "q":
                threshold = q_continue if model.learns_q_continue else torch.zeros_like(new_q_halt)
                halted = halted | (new_q_halt > threshold)
            z_high, z_low = new_high, new_low
            yield SegmentAnswers(predictions.to(torch.uint8), q_halt, residual.float(), steps)
    finally:
        inner.state_noise = None


def run_candidates(model: nn.Module, batch: dict[str, torch.Tensor], spec: CandidateSpec,
                   generator: torch.Generator | None, max_rows: int) -> list[SegmentAnswers]:
    """For a batch of B examples: per segment, the answers of its B*K candidates (example-major),
    computed in chunks of whole examples of at most max(max_rows, K) rows."""
    k = spec.per_example
    examples = batch["inputs"].shape[0]
    per_chunk = max(1, max_rows // k)
    chunks: list[list[SegmentAnswers]] = []
    for lo in range(0, examples, per_chunk):
        rows = {key: value[lo:lo + per_chunk] for key, value in batch.items()}
        if k > 1:
            rows = {key: value.repeat_interleave(k, dim=0) for key, value in rows.items()}
        chunks.append(list(run_chunk(model, rows, spec, generator)))
    if len(chunks) == 1:
        return chunks[0]
    return [SegmentAnswers(*(torch.cat([getattr(chunk[s], name) for chunk in chunks]) for name in ANSWER_FIELDS))
            for s in range(len(chunks[0]))]


def candidate_batches(model: nn.Module, split: Split, batch_size: int, dist: DistInfo, spec: CandidateSpec,
                      max_rows: int | None = None, rows: dict[str, np.ndarray] | None = None
                      ) -> Iterator[tuple[EvalBatch, dict[str, torch.Tensor], list[SegmentAnswers]]]:
    """(batch, its tensors on the device, per-segment answers of its candidates on the device) for
    this rank's rows of every batch of `split` (with `rows`, of those rows only: eval.batches.
    eval_batches). `max_rows` bounds the rows of one forward (default: the batch size)."""
    if not hasattr(model, "inner") or not hasattr(model.inner, "update"):
        raise HrmError("test-time candidates need an HRM-family model (hrm, trm, transformer)")
    random = spec.noise > 0 or spec.init_std > 0  # plain candidates draw nothing (and meta has no generator)
    generator = torch.Generator(device=dist.device).manual_seed(spec.seed) if random else None
    was_training = model.training
    model.eval()
    try:
        for item in prefetched(eval_batches(split, batch_size, dist, rows=rows)):
            tensors = as_torch(item.batch, dist.device)
            yield item, tensors, run_candidates(model, tensors, spec, generator, max_rows or batch_size)
    finally:
        model.train(was_training)
