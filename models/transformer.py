"""A plain transformer baseline with HRM's parameters, embeddings, heads and ACT loop.

The control the HRM critics asked for: does the recurrence matter, or the deep supervision? One
stack of H_layers + L_layers blocks (exactly HRM's blocks, so the parameter count is HRM's for the
same config) is applied once per segment to (state + input embedding), with gradient through all
of it. The state is carried between segments like HRM's z_high (detached, reset to H_init on
refill), so what remains recurrent is only the ACT outer loop; z_low is carried unchanged (at
L_init) so that every architecture has the same carry. Per segment it costs H_layers + L_layers
block applications against HRM's H_cycles * (L_cycles * L_layers + H_layers): equal parameters,
not equal compute. H_cycles and L_cycles are accepted (a preset can switch `arch.name`) and unused;
arch.bptt takes its one value (1, or "all": the same single pass).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from hrm.models.hrm import Batch, HrmAct, HrmConfig, InnerModel, ReasoningModule, module_blocks


@dataclass
class TransformerConfig(HrmConfig):
    name: str = "transformer"

    @staticmethod
    def gradient_units(H_cycles: int, L_cycles: int) -> tuple[int, str]:
        # One pass with gradient through all of it: arch.bptt 1 and "all" say the same.
        return 1, "transformer baseline's one pass per segment"


class TransformerInner(InnerModel):
    def build_blocks(self, config: TransformerConfig) -> None:
        self.blocks = ReasoningModule(module_blocks(config, config.H_layers + config.L_layers))

    def forward(self, z_high: torch.Tensor, z_low: torch.Tensor, batch: Batch):
        """-> (state, z_low) for the carry, logits, q_halt, q_continue."""
        x = self.input_embeddings(batch["inputs"], batch["puzzle_identifiers"])
        state = self.update(z_high, self.blocks(z_high, x, self.rotary()), "blocks")
        return state.detach(), z_low, *self.heads(state)


def transformer_model(config: TransformerConfig) -> HrmAct:
    return HrmAct(config, TransformerInner(config))
