"""Every distributed concern of training in one place: rank, world size, device, reductions.

Single-process today; under `torchrun` (which sets RANK / WORLD_SIZE / LOCAL_RANK) `setup()`
initialises torch.distributed (NCCL on CUDA, gloo otherwise), so the loop, the loader and the
checkpoint code never need to know how many processes there are: they ask `DistInfo` which rows
are theirs, reduce metric sums with `all_reduce_sum`, and let only `is_main` write files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from builders.common import HrmError

DEVICES = ("auto", "cuda", "mps", "cpu")


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def local_rows(self, global_batch_size: int) -> slice:
        """The rows of a global batch this rank works on: [r*B/W, (r+1)*B/W)."""
        per_rank = global_batch_size // self.world_size
        return slice(self.rank * per_rank, (self.rank + 1) * per_rank)


def select_device(name: str | None = "auto", local_rank: int = 0) -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an explicit device that is absent is a user error."""
    name = (name or "auto").lower()
    if name not in DEVICES and not name.startswith("cuda:"):
        raise HrmError(f"unknown device {name!r} (choose from {', '.join(DEVICES)})")
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            name = "mps"
        else:
            name = "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise HrmError("device cuda was asked for but no CUDA GPU is available")
        return torch.device("cuda", local_rank) if name == "cuda" else torch.device(name)
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise HrmError("device mps was asked for but MPS is not available")
    return torch.device(name)


def setup(device: str | None = "auto") -> DistInfo:
    """Read the torchrun environment (defaults: one process) and pick this rank's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = select_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo")
        if chosen.type == "cuda":
            torch.cuda.set_device(chosen)
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=chosen)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks in place (a no-op in one process); returns it."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_gradients(parameters) -> None:  # noqa: ANN001 - any iterable of parameters
    """Sum dense gradients over ranks (the loss is already divided by the global batch size, so a
    sum is the global gradient). The sparse puzzle-embedding optimiser gathers its own rows."""
    if is_distributed():
        for parameter in parameters:
            if parameter.grad is not None:
                dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
