"""Batches of a split's examples for a model, in order and padded (evaluation), and the batch
dict every model takes: int32 inputs, int64 labels (IGNORE_LABEL_ID where nothing is scored),
int32 puzzle identifiers. The training stream (train/data.py) builds its batches the same way."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import zarr

from hrm.common import HrmError
from hrm.builders.dataset import Split, checked_read
from hrm.common.distributed import DistInfo

IGNORE_LABEL_ID = -100  # the label value the losses and the accuracy rules skip (ignore_index)


def to_batch(inputs: np.ndarray, labels: np.ndarray, identifiers: np.ndarray,
             ignore_label_id: int | None) -> dict[str, np.ndarray]:
    """The batch dict of the interface (numpy; `as_torch` moves it to a device)."""
    labels = labels.astype(np.int64)
    if ignore_label_id is not None:
        labels[labels == ignore_label_id] = IGNORE_LABEL_ID
    return {"inputs": inputs.astype(np.int32), "labels": labels,
            "puzzle_identifiers": np.asarray(identifiers, np.int32)}


def pinned(batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Page-locked host copies, so that the copy to a CUDA device is asynchronous."""
    return {key: torch.from_numpy(value).pin_memory() for key, value in batch.items()}


def as_torch(batch: dict[str, np.ndarray | torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    cuda = device.type == "cuda"
    out = {}
    for key, value in batch.items():
        tensor = value if isinstance(value, torch.Tensor) else torch.from_numpy(value)
        if cuda and not tensor.is_pinned():
            tensor = tensor.pin_memory()
        out[key] = tensor.to(device, non_blocking=cuda)
    return out


@dataclass
class EvalBatch:
    set_name: str
    rows: np.ndarray              # int64 [b]: this rank's example rows (pad rows = -1)
    batch: dict[str, np.ndarray]  # [b] rows, padded
    mask: np.ndarray              # bool [b]: False on pad rows


def eval_batches(split: Split, batch_size: int, dist: DistInfo,
                 rows: dict[str, np.ndarray] | None = None) -> Iterator[EvalBatch]:
    """Every example of every set of `split` in order, in global batches of `batch_size` padded
    with pad rows (inputs pad_id, labels ignored, identifier 0); this rank's slice of each. With
    `rows` (set name -> sorted example rows, e.g. eval.subset's), only those rows of those sets."""
    if batch_size % dist.world_size:
        raise HrmError(f"eval batch size {batch_size} is not divisible by the {dist.world_size} processes")
    attrs = split.attrs
    pad_id, ignore = int(attrs.get("pad_id", 0)), attrs.get("ignore_label_id")
    local = dist.local_rows(batch_size)
    size = local.stop - local.start
    for set_name in split.set_names if rows is None else list(rows):
        pset = split.set(set_name)
        selected = None if rows is None else rows[set_name]
        starts, identifiers = pset.puzzle_indices, pset.puzzle_identifiers
        num_rows = pset.num_examples if selected is None else len(selected)
        for start in range(0, num_rows, batch_size):
            lo, hi = start + local.start, min(start + local.stop, num_rows)
            mine = np.arange(lo, hi, dtype=np.int64) if selected is None else selected[lo:hi]
            count = len(mine)
            inputs = np.full((size, split.seq_len), pad_id, np.uint8)
            labels = np.full((size, split.seq_len), pad_id, np.uint8)
            ids = np.zeros(size, np.int32)
            example_rows = np.full(size, -1, np.int64)
            if count:
                if selected is None:  # one contiguous range
                    inputs[:count], labels[:count] = pset.rows(lo, hi)
                else:
                    inputs[:count], labels[:count] = read_rows(pset.inputs, mine), read_rows(pset.labels, mine)
                example_rows[:count] = mine
                ids[:count] = identifiers[np.searchsorted(starts, mine, side="right") - 1]
            batch = to_batch(inputs, labels, ids, ignore)
            batch["labels"][count:] = IGNORE_LABEL_ID
            yield EvalBatch(set_name, example_rows, batch, example_rows >= 0)


def read_rows(array: zarr.Array, rows: np.ndarray) -> np.ndarray:
    """array[rows] for sorted-ish row numbers, reading one contiguous range when that is cheap. A
    chunk that does not decode raises DatasetDamaged naming it, as every dataset read does."""
    if not len(rows):
        return np.zeros((0, *array.shape[1:]), array.dtype)
    lo, hi = int(rows.min()), int(rows.max()) + 1
    if hi - lo <= 2 * len(rows) + 4096:  # tables are written in row order: almost always a range
        return checked_read(array, lo, hi)[rows - lo]
    unique, inverse = np.unique(rows, return_inverse=True)
    try:
        return array.oindex[unique][inverse]
    except Exception:  # a codec's error: find the damaged chunk among the rows asked for, and name it
        checked_read(array, lo, hi)
        raise
