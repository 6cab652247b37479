"""The Tiny Recursive Model (TRM; arXiv 2510.04871): one small network recursing on an answer.

One network f (a stack of L_layers blocks; f(a, b) adds its two arguments, then runs the blocks)
and two states, carried in the slots HRM uses for its two levels:
  y - the answer, carried as z_high (starts at H_init); the heads read it
  z - the latent reasoning state, carried as z_low (starts at L_init)
One *recursion*: n = L_cycles latent updates z <- f(z, y + x), then one answer update y <- f(y, z).
One *segment*: T = H_cycles recursions, the first T - 1 without gradient and the last with
gradient through all of its n + 1 updates (no one-step approximation, unlike HRM); `arch.bptt`
sets how many final recursions carry gradient (1 by default, `all` = every one). The ACT wrapper
is HRM's (`HrmAct`: refill on halt, exploration, evaluation runs halt_max_steps segments), with
TRM's halting: halt when q_halt > 0, trained by BCE(q_halt, answer correct) only; no continue
loss and so no extra forward for its target (`no_ACT_continue`, as the reference's default).
Every update goes through `InnerModel.update`, so HRM's training options (arch.init_std,
arch.path_noise, arch.damping) and test-time noise apply to TRM's latent and answer alike.

The module tree (inner.L_level.layers.N..., inner.H_init, inner.L_init) is the reference's, so its
checkpoints load like HRM's.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from hrm.common import HrmError
from hrm.models.hrm import Batch, HrmAct, HrmConfig, InnerModel, ReasoningModule, gradient_if, module_blocks
from hrm.models.layers import CosSin


@dataclass
class TrmConfig(HrmConfig):
    # Defaults: TRM's published model (its config/arch/trm.yaml).
    name: str = "trm"
    H_cycles: int = 3             # T: recursions per segment
    L_cycles: int = 6             # n: latent updates per recursion
    H_layers: int = 0             # unused (one network); accepted because the reference's configs carry it
    L_layers: int = 2             # blocks in the network
    # A field here, where HRM derives it: positions in front of the tokens that hold the puzzle
    # embedding (zero-padded; extra positions act as scratch space). 0: ceil(puzzle_emb_ndim / hidden).
    puzzle_emb_len: int = 16
    no_ACT_continue: bool = True  # halt on q_halt alone; False: HRM's Q-learning of "continue"
    # (arch.bptt, inherited: the final recursions with gradient; 1 = TRM's rule, "all" = all T.)

    POSITIVE_KEYS = tuple(key for key in HrmConfig.POSITIVE_KEYS if key != "H_layers")
    CHOICES = {**HrmConfig.CHOICES, "pos_encodings": ("rope", "learned", "none")}

    @staticmethod
    def gradient_units(H_cycles: int, L_cycles: int) -> tuple[int, str]:
        return H_cycles, f"recursions of a segment (H_cycles {H_cycles})"

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("H_layers", "puzzle_emb_len"):
            if getattr(self, key) < 0:
                raise HrmError(f"arch.{key} must be >= 0, got {getattr(self, key)}")
        if self.puzzle_emb_len == 0:
            self.puzzle_emb_len = -(-self.puzzle_emb_ndim // self.hidden_size)
        if self.puzzle_emb_ndim > self.puzzle_emb_len * self.hidden_size:
            raise HrmError(f"arch.puzzle_emb_ndim ({self.puzzle_emb_ndim}) does not fit in puzzle_emb_len "
                           f"({self.puzzle_emb_len}) positions of hidden_size {self.hidden_size}")


class TrmInner(InnerModel):
    """One segment of TRM: T recursions of the one network between the embeddings and the heads."""

    def build_blocks(self, config: TrmConfig) -> None:
        self.L_level = ReasoningModule(module_blocks(config, config.L_layers))  # the one network (the reference's name)

    def recursion(self, answer: torch.Tensor, latent: torch.Tensor, x: torch.Tensor,
                  cos_sin: CosSin | None) -> tuple[torch.Tensor, torch.Tensor]:
        """n latent updates from (answer + input), then one answer update from the latent."""
        for _ in range(self.config.L_cycles):
            latent = self.update(latent, self.L_level(latent, answer + x, cos_sin), "latent")
        answer = self.update(answer, self.L_level(answer, latent, cos_sin), "answer")
        return answer, latent

    def forward(self, z_high: torch.Tensor, z_low: torch.Tensor, batch: Batch):
        """(answer, latent) -> (answer, latent) detached for the carry, logits, q_halt, q_continue
        (q_continue is the reference's unused second Q output, kept for its checkpoint layout)."""
        cos_sin = self.rotary()
        x = self.input_embeddings(batch["inputs"], batch["puzzle_identifiers"])
        answer, latent = z_high, z_low
        # The first T - bptt recursions only improve the states: no gradient ("deep recursion");
        # the last bptt (arch.bptt; 1 = TRM's rule) are backpropagated through all their updates.
        first_recursion_with_grad = self.config.H_cycles - self.config.gradient_steps
        for step in range(self.config.H_cycles):
            with gradient_if(step >= first_recursion_with_grad):
                answer, latent = self.recursion(answer, latent, x, cos_sin)
        return answer.detach(), latent.detach(), *self.heads(answer)


def trm_model(config: TrmConfig) -> HrmAct:
    """TRM inside the ACT wrapper; `no_ACT_continue` picks TRM's halting (True) or HRM's."""
    return HrmAct(config, TrmInner(config), learns_q_continue=not config.no_ACT_continue)
