"""What a run asks of the machine, checked before it starts: memory and the model's size.

    log(describe_model(config.arch, counts))          # the first line of `hrm train`
    check_memory(estimate, available_memory(device))  # refuses with one line when it cannot fit

(CPU threads, the other thing a run asks for, are set by hrm.common.distributed.apply_threads.)

Memory: the estimate counts what a training step keeps alive - float32 weights and their
gradients, the optimiser's two moments, an EMA copy, the puzzle-embedding table, the activations
that the gradient depth (arch.bptt) keeps for the backward pass at this batch and sequence length,
and the loader's cache - from the model built on the `meta` device (no memory is allocated for it).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hrm.common import HrmError, format_bytes


# ----------------------------------------------------------------------------- model size


@dataclass(frozen=True)
class ModelCounts:
    parameters: int            # trainable dense parameters (the dense optimiser's)
    puzzle_rows: int           # rows of the puzzle-embedding table (0: none)
    puzzle_dim: int
    blocks: int                # transformer blocks in the model
    hidden_size: int
    mlp_width: int
    positions: int             # sequence length + puzzle-embedding positions


def count_model(model: nn.Module, seq_len: int) -> ModelCounts:
    """Sizes read off a model (built on the meta device: shapes only)."""
    puzzle_emb = getattr(model, "puzzle_emb", None)
    table = getattr(puzzle_emb, "weights", None) if puzzle_emb is not None else None
    sparse = {id(p) for p in puzzle_emb.parameters()} if puzzle_emb is not None else set()
    parameters = sum(p.numel() for p in model.parameters() if p.requires_grad and id(p) not in sparse)
    blocks = [m for m in model.modules() if type(m).__name__ == "TransformerBlock"]
    down = [m.down_proj for m in model.modules() if hasattr(m, "down_proj")]  # SwiGLU: inner -> hidden
    mlp_width = int(down[0].weight.shape[1]) if down else 0
    config = getattr(model, "config", None)
    hidden = int(getattr(config, "hidden_size", 0) or 0)
    extra = int(getattr(config, "puzzle_emb_len", 0) or 0)
    rows, dim = (int(table.shape[0]), int(table.shape[1])) if table is not None else (0, 0)
    return ModelCounts(parameters=parameters, puzzle_rows=rows, puzzle_dim=dim, blocks=len(blocks),
                       hidden_size=hidden, mlp_width=mlp_width, positions=seq_len + extra)


def meta_model(arch: dict[str, Any], signature: dict[str, Any], batch_size: int) -> nn.Module:
    """The model with shapes and no storage, to size it before anything is allocated."""
    from hrm.models.registry import build_for_dataset

    with torch.device("meta"):
        return build_for_dataset(arch, signature, batch_size)


def describe_model(arch: dict[str, Any], counts: ModelCounts) -> str:
    """`model: hrm, hidden 512, 4 H + 4 L layers, 27.3M parameters (+ puzzle embeddings 960,001 x 512)`."""
    name = arch.get("name", "hrm")
    if arch.get("H_layers") and arch.get("L_layers"):
        layers = f"{arch['H_layers']} H + {arch['L_layers']} L layers"
    else:
        layers = f"{arch.get('L_layers', arch.get('num_layers', counts.blocks))} layers"
    text = (f"model: {name}, hidden {arch.get('hidden_size', counts.hidden_size)}, {layers}, "
            f"{counts.parameters:,} parameters ({format_bytes(counts.parameters * 4)} in float32)")
    if counts.puzzle_rows:
        text += f" + puzzle embeddings {counts.puzzle_rows:,} x {counts.puzzle_dim}"
    return text


# ----------------------------------------------------------------------------- memory


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int
    optimizer: int     # gradients + Adam's two moments (+ the EMA copy)
    puzzle_table: int
    activations: int
    data_cache: int

    @property
    def total(self) -> int:
        return self.weights + self.optimizer + self.puzzle_table + self.activations + self.data_cache

    def describe(self) -> str:
        return (f"about {format_bytes(self.total)}: weights {format_bytes(self.weights)}, optimiser state "
                f"{format_bytes(self.optimizer)}, puzzle-embedding table {format_bytes(self.puzzle_table)}, "
                f"activations {format_bytes(self.activations)}, data cache {format_bytes(self.data_cache)}")


def graph_blocks(arch: dict[str, Any]) -> int:
    """How many block applications a training step keeps for the backward pass (arch.bptt,
    models/depth.py), the most of any stage of a depth schedule. HRM: L_layers for each low step
    with gradient and H_layers for each high step among them (one of each with the one-step
    gradient); TRM: L_layers x (L_cycles + 1) per recursion with gradient; the transformer: all
    its blocks once."""
    from hrm.models.depth import resolve_bptt, stage_fractions, values_at_fraction
    from hrm.models.registry import ARCH_CONFIGS

    name = arch.get("name", "hrm")
    config_class = ARCH_CONFIGS[name]
    most = 0
    for fraction in stage_fractions(arch):
        stage = {**arch, **values_at_fraction(arch, fraction)}
        high, low = int(stage["H_cycles"]), int(stage["L_cycles"])
        with_grad = resolve_bptt(stage.get("bptt", 1), *config_class.gradient_units(high, low))
        if name == "trm":
            blocks = with_grad * (low + 1) * int(stage["L_layers"])
        elif name == "hrm":
            first = high * low - with_grad  # the first low step with gradient
            highs = sum(1 for h in range(high) if (h + 1) * low - 1 >= first)  # high steps after one of them
            blocks = with_grad * int(stage["L_layers"]) + highs * int(stage["H_layers"])
        else:
            blocks = int(stage["H_layers"]) + int(stage["L_layers"])
        most = max(most, blocks)
    return most


def estimate_memory(counts: ModelCounts, *, local_batch: int, vocab_size: int, ema: bool,
                    activation_bytes: int = 4, data_cache: int = 0, grad_blocks: int | None = None) -> MemoryEstimate:
    """Bytes a training step needs on one process.

    Activations: the graph of every block application with gradient (`grad_blocks`, from
    `graph_blocks`; default one pass through every block, HRM's one-step gradient); per token
    and block that is the block input, q/k/v, the rotated q and k, the attention output, the
    output projection, two residual sums and their norms (13 x hidden), and the MLP's gate, up,
    SiLU and product (4 x MLP width). One more block's worth covers the transient of the no-grad
    steps, and the logits are kept in float64 by the stablemax loss (logits, shifted,
    normalised: 3 x 8 bytes per vocabulary entry)."""
    tokens = local_batch * counts.positions
    per_token_block = 13 * counts.hidden_size + 4 * counts.mlp_width
    kept_blocks = counts.blocks if grad_blocks is None else grad_blocks
    activations = tokens * per_token_block * (kept_blocks + 1) * activation_bytes
    activations += local_batch * counts.positions * vocab_size * (activation_bytes + 24)
    weights = counts.parameters * 4
    optimizer = counts.parameters * 4 * (3 + (1 if ema else 0))
    # The table, plus the rows of one batch and their gradient (sign-SGD keeps no moments).
    puzzle = (counts.puzzle_rows + 2 * local_batch) * counts.puzzle_dim * 4
    return MemoryEstimate(weights=weights, optimizer=optimizer, puzzle_table=puzzle,
                          activations=activations, data_cache=data_cache)


def available_memory(device: torch.device) -> int | None:
    """Bytes this process may still use on `device`: free GPU memory on CUDA; otherwise the
    system's available memory, capped by a cgroup (container) limit. None when unknown."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    found: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = Path(limit_file).read_text().strip()
            if limit.isdigit() and int(limit) < 1 << 60:
                found.append(int(limit) - int(Path(usage_file).read_text().strip()))
            break
        except (OSError, ValueError):
            continue
    if not found and hasattr(os, "sysconf"):
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError):
            pass
    return max(0, min(found)) if found else None


def check_memory(estimate: MemoryEstimate, available: int | None, where: str) -> None:
    """Refuse (one line) a run whose estimate exceeds the memory available on `where`."""
    if available is None or estimate.total <= available:
        return
    raise HrmError(f"this run needs {estimate.describe()}; only {format_bytes(available)} is available on "
                   f"{where}. Lower global_batch_size or the model size, or pass memory_check=false "
                   f"to start anyway")


def multi_gpu_recipe(config: Any, counts: ModelCounts) -> str | None:
    """A warning when a config made for several GPUs (the published presets: batches of 384-768
    sequences through a hidden-512 model) is run on a CPU, where one step takes minutes."""
    if config.global_batch_size >= 384 and counts.hidden_size >= 512:
        return (f"warning: global_batch_size {config.global_batch_size} with hidden size "
                f"{counts.hidden_size} is a multi-GPU recipe (the paper's presets); on a CPU a step "
                f"takes minutes. For a CPU run start from examples/smoke.yaml")
    return None


def peak_memory(device: torch.device) -> int | None:
    """Bytes at this process's peak so far: on CUDA the allocator's peak (tensors only); elsewhere
    the process's peak resident set (Python, torch and the data included). On Linux that is
    /proc/self/status's VmHWM, not getrusage's ru_maxrss: Linux keeps ru_maxrss across exec, so
    a run started from a large process (a test runner, a notebook) would report that one's peak.
    Elsewhere ru_maxrss (bytes on macOS); None where neither is known (Windows)."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)
