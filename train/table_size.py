"""The size of the puzzle-embedding table and of a checkpoint, stated when a run starts.

ARC-AGI-1 with 1000 augmentations has ~876k puzzle identifiers: at 512 float32 values per row
the table alone is ~1.8 GB, in memory and in every checkpoint (the model's buffer), while the
network is ~27M parameters. Sign-SGD keeps no per-row state, so the table costs its size once;
the dense weights cost three times theirs in a checkpoint (weights + Adam's two moments), four
with an EMA. Shrinking: fewer augmentations (`--aug`) or a narrower `arch.puzzle_emb_ndim`.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hrm.common import format_bytes

_LARGE_TABLE = 256 * 2**20  # above this, the line says how to shrink the table


def tensor_bytes(tree: Any) -> int:
    """Bytes of every tensor in a carry-like tree (dataclasses, dicts, sequences)."""
    if isinstance(tree, torch.Tensor):
        return tree.numel() * tree.element_size()
    if hasattr(tree, "__dataclass_fields__"):
        return sum(tensor_bytes(getattr(tree, name)) for name in tree.__dataclass_fields__)
    if isinstance(tree, dict):
        return sum(tensor_bytes(value) for value in tree.values())
    if isinstance(tree, (list, tuple)):
        return sum(tensor_bytes(value) for value in tree)
    return 0


def table_and_checkpoint_bytes(model: nn.Module, ema: bool, carry_bytes: int = 0) -> dict[str, int]:
    """Bytes of the puzzle table, the dense weights, and a checkpoint (every persistent tensor of
    the model, Adam's two moments per dense weight, an EMA copy of the dense weights, and the ACT
    carry of the global batch, `carry_bytes`: batch x positions x hidden x 2 states)."""
    state = model.state_dict()
    table = sum(t.numel() * t.element_size() for k, t in state.items() if k.endswith("puzzle_emb.weights"))
    dense = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    model_bytes = sum(t.numel() * t.element_size() for t in state.values())
    return {"table": table, "dense": dense,
            "checkpoint": model_bytes + 2 * dense + (dense if ema else 0) + carry_bytes}


def table_size_line(model: nn.Module, num_identifiers: int, ema: bool = False, carry_bytes: int = 0) -> str:
    """One log line: the table's rows, width and size, and the checkpoint's size."""
    sizes = table_and_checkpoint_bytes(model, ema, carry_bytes)
    table = next((t for k, t in model.state_dict().items() if k.endswith("puzzle_emb.weights")), None)
    if table is None:
        return f"no puzzle-embedding table; checkpoint ~{format_bytes(sizes['checkpoint'])}"
    line = (f"puzzle-embedding table: {num_identifiers:,} identifiers x {table.shape[1]} = {format_bytes(sizes['table'])} "
            f"{str(table.dtype).removeprefix('torch.')} (in memory and in every checkpoint); checkpoint "
            f"~{format_bytes(sizes['checkpoint'])} (dense weights {format_bytes(sizes['dense'])}, x3 with Adam's moments"
            f"{', x4 with the EMA' if ema else ''}{f', ACT carry {format_bytes(carry_bytes)}' if carry_bytes else ''})")
    if sizes["table"] > _LARGE_TABLE:
        line += "; shrink the table with fewer augmentations (--aug) or a narrower arch.puzzle_emb_ndim"
    return line
