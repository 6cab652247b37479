"""Checkpoints: one `torch.save` dict per step, written to a temp file and renamed.

Everything in a checkpoint is a tensor or a plain container of primitives, so it loads with
`torch.load(weights_only=True)` (checkpoints travel; unpickling arbitrary objects would run
code). Objects that are not plain - the model's ACT carry, RNG states - are converted by
`tree_state` / `rng_state` and rebuilt by `tree_load` / `set_rng_state`.
"""
from __future__ import annotations

import dataclasses
import errno
import os
import random
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from hrm.common import HrmError, atomic_file, format_bytes, storage_error
from hrm.models.checkpoints import FORMAT, VERSION, list_checkpoints, load_checkpoint
from hrm.train.table_size import tensor_bytes  # about the checkpoint's size on disk


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Atomic: a crash mid-write leaves the previous checkpoints and no partial `step_N.pt`. A full
    or read-only disk is an HrmError naming the file, the space it needs and the space free."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as tmp, open(tmp, "wb") as handle:
            try:
                torch.save({"format": FORMAT, "version": VERSION, **state}, handle)
            except RuntimeError as error:
                # torch's zip writer reports a short write (the disk filled) as "unexpected pos"
                # or "failed writing"; said as what it almost always is
                if "unexpected pos" not in str(error) and "failed writing" not in str(error):
                    raise
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)) from None
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        replacement = storage_error(error, path, needed=f"~{format_bytes(tensor_bytes(state))}")
        if replacement is None:
            raise
        raise replacement from None


def prune_checkpoints(run_dir: str | os.PathLike, keep: int) -> None:
    """Keep the newest `keep` checkpoints (0 keeps all)."""
    if keep > 0:
        for _, path in list_checkpoints(run_dir)[:-keep]:
            path.unlink(missing_ok=True)


DAMAGED_SUFFIX = ".damaged"


def load_for_resume(run_dir: str | os.PathLike, on_skip: Callable[[str], None], *,
                    set_aside: bool = True) -> dict[str, Any]:
    """The newest checkpoint of a run that loads. Each newer one that does not (truncated by a
    full disk, damaged) is reported through `on_skip` and moved aside to `step_N.pt.damaged`, so
    that it no longer counts as the latest nor toward keep_checkpoints (the resumed run saves
    that step again; under torchrun only the writer, rank 0, passes `set_aside`). A run without
    any checkpoint, or with none that loads, is an error (and nothing is moved): resuming it
    would silently start over."""
    found = list_checkpoints(run_dir)
    if not found:
        raise HrmError(f"{run_dir} has no checkpoint to resume from (it stopped before its first save); "
                       f"start it again with `hrm train --data DATA --out {run_dir} --force`")
    skipped: list[tuple[Path, str]] = []
    for step, path in reversed(found):
        try:
            state = load_checkpoint(path)
        except HrmError as error:
            skipped.append((path, str(error)))
            continue
        for damaged, message in skipped:
            if not set_aside:
                continue
            aside = damaged.with_name(damaged.name + DAMAGED_SUFFIX)
            os.replace(damaged, aside)
            on_skip(f"warning: skipped {message}; moved it aside to {aside} (delete it to free its space)")
        return state
    raise HrmError(f"no checkpoint of {run_dir} loads ({skipped[0][1]})")


# ----------------------------------------------------------------------------- plain trees


def tree_state(obj: Any) -> Any:
    """Dataclasses / namedtuples / dicts / sequences of tensors -> dicts and lists of CPU tensors."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: tree_state(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return {name: tree_state(value) for name, value in zip(obj._fields, obj)}
    if isinstance(obj, dict):
        return {key: tree_state(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [tree_state(value) for value in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint")


def tree_load(template: Any, state: Any) -> Any:
    """Rebuild an object shaped like `template` (same types, devices, dtypes) from `tree_state`."""
    if isinstance(template, torch.Tensor):
        if not isinstance(state, torch.Tensor) or state.shape != template.shape:
            raise HrmError("the checkpoint's ACT carry does not match this model/batch size")
        return state.to(device=template.device, dtype=template.dtype)
    if dataclasses.is_dataclass(template) and not isinstance(template, type):
        values = {f.name: tree_load(getattr(template, f.name), state[f.name])
                  for f in dataclasses.fields(template)}
        try:
            return dataclasses.replace(template, **values)
        except (TypeError, ValueError):  # fields with init=False: fill a copy by hand
            rebuilt = dataclasses.replace(template)
            for name, value in values.items():
                object.__setattr__(rebuilt, name, value)
            return rebuilt
    if isinstance(template, tuple) and hasattr(template, "_fields"):
        return template._replace(**{n: tree_load(getattr(template, n), state[n]) for n in template._fields})
    if isinstance(template, dict):
        return {key: tree_load(value, state[key]) for key, value in template.items()}
    if isinstance(template, (list, tuple)):
        return type(template)(tree_load(t, s) for t, s in zip(template, state))
    return state


def map_tensors(fn: Any, tree: Any) -> Any:
    """`fn` applied to every tensor of a plain tree (what `tree_state` returns)."""
    if isinstance(tree, torch.Tensor):
        return fn(tree)
    if isinstance(tree, dict):
        return {key: map_tensors(fn, value) for key, value in tree.items()}
    if isinstance(tree, list):
        return [map_tensors(fn, value) for value in tree]
    return tree


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU and CUDA) global RNG states as plain values."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": [version, list(internal), gauss],
             "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        # This process's device only: under torchrun every rank's generator is in the same state
        # (random draws are made for the global batch), so rank 0's fits any rank's device.
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if isinstance(state.get("cuda"), torch.Tensor) and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
