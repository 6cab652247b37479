"""Every process concern of training and evaluation in one place: rank, world size, device,
reductions, and the CPU threads a process uses.

One process by default; under `torchrun` (which sets RANK / WORLD_SIZE / LOCAL_RANK) `setup()`
initialises torch.distributed (NCCL on CUDA, gloo otherwise), so the loop, the loader and the
checkpoint code never need to know how many processes there are: they ask `DistInfo` which rows
of each global batch are theirs, sum gradients and metric sums over ranks, and let only
`is_main` write files.

Why N processes compute the run of one process (up to float reduction order):
- every rank samples the same global batch and takes rows [r*B/N, (r+1)*B/N) (train/data.py);
- the loss is divided by the global batch size, so the SUM of the ranks' gradients is the
  global gradient (`all_reduce_gradients`, bucketed); the sparse puzzle-embedding optimiser
  gathers every rank's ids and gradient rows (optim.gather_across_ranks);
- the model's random draws (ACT exploration) are made for the global batch and sliced
  (`assign_slots`), so every rank's generator stays in the same state as one process's;
- initial weights come from the same seed and are broadcast from rank 0 anyway;
- the ACT carry is checkpointed as the global carry (`gather_rows`) and each rank takes its
  slice on resume, so a run can continue on a different number of processes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from hrm.common import HrmError

DEVICES = ("auto", "cuda", "mps", "cpu")
_control_group: "dist.ProcessGroup | None" = None  # None: the default group


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
    global _control_group
    if world_size > 1 and not dist.is_initialized():
        if chosen.type == "cuda":
            # The device first: NCCL binds its communicator to the current device, and a rank that
            # initialised on cuda:0 would put every rank's first collective there.
            torch.cuda.set_device(chosen)
        dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo",
                                device_id=chosen if chosen.type == "cuda" else None)
        # Control flags (a stop signal) go through a CPU group, so checking them never waits on
        # the GPU; with gloo the world group is one already.
        _control_group = dist.new_group(backend="gloo") if chosen.type == "cuda" else None
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=chosen)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks in place (a no-op in one process); returns it."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_gradients(parameters, bucket_bytes: int = 25 << 20) -> None:  # noqa: ANN001 - any iterable of parameters
    """Sum dense gradients over ranks (the loss is already divided by the global batch size, so a
    sum is the global gradient), a few flat buckets per call rather than one collective per
    tensor. The sparse puzzle-embedding optimiser gathers its own rows."""
    if not is_distributed():
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    bucket: list[torch.Tensor] = []
    size = 0
    for index, grad in enumerate(grads):
        bucket.append(grad)
        size += grad.numel() * grad.element_size()
        last = index == len(grads) - 1
        if size >= bucket_bytes or last or grads[index + 1].dtype != grad.dtype:
            flat = torch.cat([g.reshape(-1) for g in bucket])
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
            offset = 0
            for g in bucket:
                g.copy_(flat[offset:offset + g.numel()].view_as(g))
                offset += g.numel()
            bucket, size = [], 0


@torch.no_grad()
def broadcast_from_main(module: torch.nn.Module) -> None:
    """Make every rank hold rank 0's parameters and buffers (the seed already makes them equal;
    this guards against any rank-dependent initialisation)."""
    if is_distributed():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


def assign_slots(model: torch.nn.Module, info: DistInfo, global_batch_size: int) -> None:
    """Tell the model which slots of the global batch this rank holds (for its random draws)."""
    if hasattr(model, "global_slots"):
        model.global_slots = (info.local_rows(global_batch_size).start, global_batch_size)


def gather_rows(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Every rank's rows concatenated in rank order (dim 0), on the CPU; the tensor itself in one
    process. Collectives run on `device` (NCCL needs CUDA tensors)."""
    if not is_distributed():
        return tensor.detach().cpu()
    local = tensor.detach().to(device).contiguous()
    is_bool = local.dtype == torch.bool
    if is_bool:  # gloo has no bool collectives
        local = local.to(torch.uint8)
    parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, local)
    rows = torch.cat(parts).cpu()
    return rows.bool() if is_bool else rows


def any_rank(flag: bool) -> bool:
    """True on every rank when `flag` is true on any rank (so all ranks stop at the same step)."""
    if not is_distributed():
        return flag
    value = torch.tensor([int(flag)])
    dist.all_reduce(value, op=dist.ReduceOp.MAX, group=_control_group)
    return bool(value.item())


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def teardown() -> None:
    global _control_group
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _control_group = None


# ----------------------------------------------------------------------------- CPU threads
# PyTorch's default is one OpenMP thread per core. Its threads meet at a barrier after every
# operation, so when another process holds one of the cores every operation waits for the thread
# that was descheduled: on the 2-core machine one busy neighbour made two threads 10-20x slower
# than one, while on an idle machine two threads train the smoke preset about twice as fast as one
# (benchmarks/README.md, threads). So hrm uses the cores that are idle when the command starts:
# the cores less those the 1-minute load average fills (its whole part: the average lags, and a
# job that just ended still shows as a fraction), at least one and at most PyTorch's own default
# (one per physical core). `--threads N` (config key `threads`) sets it; 0 = PyTorch's
# default. A neighbour that starts later is not seen: with one, give --threads 1.


# PyTorch's own default (one thread per physical core, or OMP_NUM_THREADS), read before hrm sets any.
TORCH_DEFAULT_THREADS = torch.get_num_threads()


def idle_cores(cores: int | None = None, load: float | None = None) -> int:
    """The cores not taken by other work right now: `cores` (default: those this process may use)
    less the whole part of the 1-minute load average (default: the system's; 0 where it has none),
    at least 1."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if load is None:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(cores, cores - int(load)))


def resolve_threads(threads: int | None, device: torch.device) -> int | None:
    """The number of intra-op threads to use: `threads` when given (0: PyTorch's default, returned
    as None); on a CPU the idle cores, at most PyTorch's default; None (leave PyTorch alone) on a
    GPU, whose work does not run on CPU threads."""
    if threads is not None:
        if threads < 0:
            raise HrmError(f"threads must be 0 (PyTorch's default) or positive, got {threads}")
        return threads or None
    return min(idle_cores(), TORCH_DEFAULT_THREADS) if device.type == "cpu" else None


def apply_threads(threads: int | None, device: torch.device) -> int:
    """Set torch's intra-op threads as `resolve_threads` says; returns the number in use."""
    chosen = resolve_threads(threads, device)
    if chosen is not None:
        torch.set_num_threads(chosen)
    return torch.get_num_threads()
