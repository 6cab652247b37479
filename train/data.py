"""Batches for training and evaluation, read from the zarr dataset format (builders/dataset.py).

Training sampling follows the reference code: each epoch shuffles the groups and picks one
puzzle version per group; a batch is filled with the examples of consecutive picked puzzles (the
puzzle that overflows contributes a random subset of its examples, the rest of it is skipped).
Epochs are chained within one evaluation interval ("pass", `eval_interval` epochs, as the
reference's `epochs_per_iter`), and the last partial batch of a pass is dropped. Every random
draw is a pure function of (seed, epoch, position), so the sampler position is three integers and
a resumed run sees exactly the batches it would have seen.

Only index arithmetic touches the whole dataset; token rows are read from zarr in blocks (shards
when the array fits in `cache_bytes`, chunks otherwise) kept in an LRU of decoded blocks, and
each rank reads only its own rows [r*B/W, (r+1)*B/W) of every global batch. A background thread
prepares the next batches while the model computes.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import zarr

from hrm.common import HrmError
from hrm.common.prefetch import Prefetcher
from hrm.builders.dataset import PuzzleSet, Split, checked_read
from hrm.common.distributed import DistInfo
from hrm.eval.batches import pinned, to_batch


# ----------------------------------------------------------------------------- sampling


class TrainSampler:
    """Global batches of example rows under the reference sampling; resumable by `state_dict`."""

    def __init__(self, puzzle_indices: np.ndarray, group_indices: np.ndarray, *, batch_size: int,
                 epochs: int, epochs_per_pass: int, seed: int):
        self.puzzle_start = np.asarray(puzzle_indices[:-1], np.int64)
        self.puzzle_size = np.diff(np.asarray(puzzle_indices, np.int64))
        self.group_lo = np.asarray(group_indices[:-1], np.int64)
        self.group_hi = np.asarray(group_indices[1:], np.int64)
        self.num_groups = len(self.group_lo)
        self.batch_size, self.epochs, self.seed = batch_size, epochs, seed
        self.epochs_per_pass = max(1, min(epochs_per_pass, epochs))
        if self.num_groups == 0:
            raise HrmError("the training split has no groups")
        if np.any(self.group_hi <= self.group_lo):
            raise HrmError("the training split has a group without puzzles")
        # The smallest pass any seed can produce must fill at least one batch.
        smallest = np.minimum.reduceat(self.puzzle_size, self.group_lo).sum() * self.epochs_per_pass
        if smallest < batch_size:
            raise HrmError(f"global_batch_size {batch_size} is larger than one evaluation interval of "
                           f"training data can fill ({smallest} examples); lower global_batch_size or "
                           f"raise eval_interval")
        self.epoch = 0   # epoch of the next group to take
        self.pos = 0     # position of that group in the epoch's shuffled order
        self.batches = 0
        self.last_pass = 0  # the evaluation interval the last batch came from
        self._cached: tuple[int, np.ndarray, np.ndarray] | None = None

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos, "batches": self.batches}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.pos, self.batches = int(state["epoch"]), int(state["pos"]), int(state["batches"])

    @property
    def progress_epochs(self) -> float:
        return self.epoch + self.pos / self.num_groups

    def _epoch_plan(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """The puzzles picked in `epoch` (in shuffled group order) and their cumulative sizes."""
        if self._cached is None or self._cached[0] != epoch:
            puzzles = self._epoch_puzzles(epoch)
            self._cached = (epoch, puzzles, np.cumsum(self.puzzle_size[puzzles]))
        return self._cached[1], self._cached[2]

    def _epoch_puzzles(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(self.num_groups)
        return rng.integers(self.group_lo[order], self.group_hi[order])

    def _subset(self, epoch: int, pos: int, puzzle: int, count: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, epoch, pos, 1])
        picked = np.sort(rng.choice(int(self.puzzle_size[puzzle]), count, replace=False))
        return self.puzzle_start[puzzle] + picked

    def next_batch(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(example rows int64 [B], puzzle index int64 [B]) of the next batch, or None when done."""
        taken = self._take()
        return None if taken is None else self._rows(*taken)

    def count_batches(self, limit: int | None = None) -> int:
        """How many batches a run yields from its start (counting stops at `limit`): fewer than
        epochs x examples per epoch / batch, as every batch skips the rest of the puzzle it ends
        in and every pass drops its last partial batch. next_batch's walk on puzzle sizes only
        (this sampler does not move); a few seconds for the ARC presets' 100,000 epochs."""
        size = self.puzzle_size
        if (size == size[0]).all():  # one size: every batch takes the same number of puzzles
            per_batch = -(-self.batch_size // int(size[0]))
            count = sum(min(self.epochs_per_pass, self.epochs - first) * self.num_groups // per_batch
                        for first in range(0, self.epochs, self.epochs_per_pass))
            return count if limit is None else min(count, limit)
        # Versions of a group share their size (ARC): the shuffle alone decides the sizes in order.
        uniform = (size == np.repeat(size[self.group_lo], self.group_hi - self.group_lo)).all()
        group_size = size[self.group_lo] if uniform else None
        count = 0
        for first in range(0, self.epochs, self.epochs_per_pass):
            need = self.batch_size  # examples the batch being filled still needs (a pass starts afresh)
            for epoch in range(first, min(first + self.epochs_per_pass, self.epochs)):
                if group_size is not None:
                    sizes = group_size[np.random.default_rng([self.seed, epoch]).permutation(self.num_groups)]
                else:
                    sizes = size[self._epoch_puzzles(epoch)]
                cumulative = np.cumsum(sizes)
                base = 0  # examples of this epoch before the current batch's first puzzle here
                while True:
                    end = int(np.searchsorted(cumulative, base + need, side="left"))  # the puzzle that fills it
                    if end == len(cumulative):  # the epoch runs out: the next one continues the batch
                        need -= int(cumulative[-1]) - base
                        break
                    count, need, base = count + 1, self.batch_size, int(cumulative[end])
                if limit is not None and count >= limit:
                    return limit
        return count

    def _take(self) -> tuple[np.ndarray, tuple[int, int, int, int] | None] | None:
        """The puzzles of the next batch taken whole, and the one it takes part of (epoch,
        position, puzzle, examples); None when done. Moves the position past them."""
        while self.epoch < self.epochs:
            pass_end = min((self.epoch // self.epochs_per_pass + 1) * self.epochs_per_pass, self.epochs)
            self.last_pass = self.epoch // self.epochs_per_pass
            epoch, pos, need = self.epoch, self.pos, self.batch_size
            whole: list[np.ndarray] = []  # puzzles taken whole
            partial: tuple[int, int, int, int] | None = None
            while need > 0 and epoch < pass_end:
                puzzles, cumulative = self._epoch_plan(epoch)
                base = cumulative[pos - 1] if pos else 0
                full = int(np.searchsorted(cumulative, base + need, side="left"))
                if full >= len(cumulative):  # the epoch runs out before the batch is full
                    whole.append(puzzles[pos:])
                    need -= int(cumulative[-1] - base)
                    epoch, pos = epoch + 1, 0
                    continue
                whole.append(puzzles[pos:full])
                taken = int(cumulative[full - 1] - base) if full > pos else 0
                last = int(puzzles[full])
                if need - taken == self.puzzle_size[last]:
                    whole.append(puzzles[full:full + 1])
                else:
                    partial = (epoch, full, last, need - taken)
                need, pos = 0, full + 1
                if pos == len(cumulative):
                    epoch, pos = epoch + 1, 0
            if need > 0:  # the pass ended with a partial batch: drop it (reference)
                self.epoch, self.pos = pass_end, 0
                continue
            self.epoch, self.pos = epoch, pos
            self.batches += 1
            return np.concatenate(whole), partial
        return None

    def _rows(self, whole: np.ndarray, partial: tuple[int, int, int, int] | None
              ) -> tuple[np.ndarray, np.ndarray]:
        sizes = self.puzzle_size[whole]
        offsets = np.cumsum(sizes) - sizes
        rows = np.repeat(self.puzzle_start[whole] - offsets, sizes) + np.arange(sizes.sum())
        puzzles = np.repeat(whole, sizes)
        if partial is not None:
            epoch, pos, puzzle, count = partial
            rows = np.concatenate([rows, self._subset(epoch, pos, puzzle, count)])
            puzzles = np.concatenate([puzzles, np.full(count, puzzle, np.int64)])
        return rows.astype(np.int64), puzzles.astype(np.int64)


# ----------------------------------------------------------------------------- reading


class BlockReader:
    """Random row access to a zarr array through an LRU of decoded blocks (bounded in bytes).

    A block is a whole shard when the array fits in the budget (one read decodes 64 chunks,
    ~4x cheaper per row than chunk reads), a chunk otherwise (a miss then costs one chunk).
    """

    def __init__(self, array: zarr.Array, budget_bytes: int):
        self.array = array
        row_bytes = int(np.prod(array.shape[1:], dtype=np.int64)) * array.dtype.itemsize
        shards = getattr(array, "shards", None)
        fits = array.shape[0] * row_bytes <= budget_bytes
        self.block_rows = int((shards if shards and fits else array.chunks)[0])
        self.block_bytes = self.block_rows * row_bytes
        self.max_blocks = max(2, budget_bytes // max(1, self.block_bytes))
        self.blocks: OrderedDict[int, np.ndarray] = OrderedDict()

    def _block(self, index: int) -> np.ndarray:
        block = self.blocks.get(index)
        if block is None:
            start = index * self.block_rows
            block = checked_read(self.array, start, start + self.block_rows)
            self.blocks[index] = block
            while len(self.blocks) > self.max_blocks:
                self.blocks.popitem(last=False)
        else:
            self.blocks.move_to_end(index)
        return block

    def take(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), *self.array.shape[1:]), self.array.dtype)
        blocks = rows // self.block_rows
        order = np.argsort(blocks, kind="stable")
        sorted_blocks = blocks[order]
        bounds = np.flatnonzero(np.diff(sorted_blocks)) + 1
        for group in np.split(order, bounds):
            if len(group):
                index = int(blocks[group[0]])
                out[group] = self._block(index)[rows[group] - index * self.block_rows]
        return out


# ----------------------------------------------------------------------------- loaders


@dataclass
class TrainBatch:
    batch: dict[str, Any]          # this rank's rows (numpy; pinned torch tensors for CUDA)
    sampler_state: dict[str, int]  # the sampler position after this batch (for checkpoints)
    epoch: float                   # fractional epochs done after this batch
    pass_index: int                # the evaluation interval ("pass") the batch belongs to


class TrainLoader:
    """The training stream of one rank: `for item in loader.iterate(): item.batch ...`."""

    def __init__(self, split: Split, *, global_batch_size: int, epochs: int, epochs_per_pass: int,
                 seed: int, dist: DistInfo, cache_bytes: int = 2 << 30):
        if len(split.set_names) != 1:
            raise HrmError(f"training split {split.name!r} has {len(split.set_names)} sets; one is supported")
        if global_batch_size % dist.world_size:
            raise HrmError(f"global_batch_size {global_batch_size} is not divisible by the "
                           f"{dist.world_size} processes")
        self.pset: PuzzleSet = split.set(split.set_names[0])
        self.attrs = split.attrs
        self.dist = dist
        self.rows_of_rank = dist.local_rows(global_batch_size)
        self.sampler = TrainSampler(self.pset.puzzle_indices, self.pset.group_indices,
                                    batch_size=global_batch_size, epochs=epochs,
                                    epochs_per_pass=epochs_per_pass, seed=seed)
        self.inputs = BlockReader(self.pset.inputs, cache_bytes // 2)
        self.labels = BlockReader(self.pset.labels, cache_bytes // 2)
        self._prefetcher: Prefetcher | None = None

    def _produce(self) -> Iterator[TrainBatch]:
        identifiers = self.pset.puzzle_identifiers
        while (picked := self.sampler.next_batch()) is not None:
            rows, puzzles = picked[0][self.rows_of_rank], picked[1][self.rows_of_rank]
            batch = to_batch(self.inputs.take(rows), self.labels.take(rows), identifiers[puzzles],
                             self.attrs.get("ignore_label_id"))
            if self.dist.device.type == "cuda":  # pin here, in the loader's thread
                batch = pinned(batch)
            yield TrainBatch(batch, self.sampler.state_dict(), self.sampler.progress_epochs,
                             self.sampler.last_pass)

    def iterate(self, prefetch: bool = True) -> Iterator[TrainBatch]:
        """Batches from the sampler's current position (set it with `sampler.load_state_dict`)."""
        self.close()
        if not prefetch:
            return self._produce()
        self._prefetcher = Prefetcher(self._produce())
        return self._prefetcher

    def close(self) -> None:
        if self._prefetcher is not None:
            self._prefetcher.close()
            self._prefetcher = None
