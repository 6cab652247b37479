"""A seeded subset of a split to evaluate: N items (ARC tasks, sudoku/maze puzzles) and at most
M versions of each, so that an evaluation can be sized to the time at hand.

    subset = choose_subset(scorer.split, scorer.frames, max_items=100, max_versions=8, seed=0)
    scorer.restrict(subset)            # score only these items and rows
    for item in subset_batches(split, subset, 768, dist): ...

An item is a group of the split (one original task or puzzle with all its augmented versions).
Items are drawn without replacement by `numpy.random.default_rng(seed)`; within an item the
unaugmented version is always kept (it is the canonical frame every other version is mapped
back to) and the other M - 1 versions are drawn from the rest. The summary records the subset
(`items`, `of_items`, `max_versions`, `seed`) so that a score is never mistaken for a full one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from hrm.common import HrmError, UsageError

if TYPE_CHECKING:
    from hrm.builders.dataset import Split
    from hrm.eval.inverse import SetFrames
    from hrm.eval.batches import EvalBatch
    from hrm.common.distributed import DistInfo


@dataclass
class Subset:
    items: int
    of_items: int
    max_versions: int | None
    seed: int
    groups: np.ndarray                 # bool [num_groups]: the items kept (global group index)
    rows: dict[str, np.ndarray]        # per set: the sorted example rows kept

    def summary(self) -> dict[str, Any]:
        return {"items": self.items, "of_items": self.of_items, "max_versions": self.max_versions,
                "seed": self.seed}

    @property
    def num_rows(self) -> int:
        return int(sum(len(rows) for rows in self.rows.values()))


def choose_subset(split: "Split", frames: dict[str, "SetFrames"], max_items: int | None,
                  max_versions: int | None, seed: int = 0) -> Subset | None:
    """The items and rows to score, or None when that is everything (nothing to record). An
    item is a group of one of `frames`' sets (eval.score.Scorer.frames), numbered across them."""
    for name, value in (("--max-items", max_items), ("--max-versions", max_versions)):
        if value is not None and value < 1:
            raise UsageError(f"{name} must be at least 1, got {value}")
    rng = np.random.default_rng(seed)
    total = sum(f.num_groups for f in frames.values())
    keep = np.ones(total, bool)
    if max_items is not None and max_items < total:
        keep[:] = False
        keep[rng.choice(total, size=max_items, replace=False)] = True
    rows: dict[str, np.ndarray] = {}
    versions_dropped = False
    first_group = 0
    for set_name, set_frames in frames.items():
        puzzle_set = split.set(set_name)
        group_indices, puzzle_indices = puzzle_set.group_indices, puzzle_set.puzzle_indices
        identity = set_frames.identity_puzzles()
        chosen_rows = []
        for local in np.flatnonzero(keep[first_group:first_group + set_frames.num_groups]):
            puzzles = np.arange(group_indices[local], group_indices[local + 1])
            if max_versions is not None and len(puzzles) > max_versions:
                others = puzzles[puzzles != identity[local]]
                drawn = rng.choice(others, size=max_versions - 1, replace=False)
                puzzles = np.sort(np.concatenate([[identity[local]], drawn]))
                versions_dropped = True
            chosen_rows += [np.arange(puzzle_indices[p], puzzle_indices[p + 1]) for p in puzzles]
        rows[set_name] = np.concatenate(chosen_rows).astype(np.int64) if chosen_rows else np.zeros(0, np.int64)
        first_group += set_frames.num_groups
    if keep.all() and not versions_dropped:
        return None
    return Subset(items=int(keep.sum()), of_items=total, max_versions=max_versions, seed=seed,
                  groups=keep, rows=rows)


def subset_batches(split: "Split", subset: Subset, batch_size: int, dist: "DistInfo") -> Iterator["EvalBatch"]:
    """The subset's rows of every set in order, in global batches of `batch_size` padded with pad
    rows (inputs pad_id, labels ignored, identifier 0) as eval.batches.eval_batches pads the full
    split; this rank's slice of each."""
    from hrm.eval.batches import IGNORE_LABEL_ID, EvalBatch, read_rows, to_batch

    if batch_size % dist.world_size:
        raise HrmError(f"eval batch size {batch_size} is not divisible by the {dist.world_size} processes")
    pad_id, ignore = int(split.attrs.get("pad_id", 0)), split.attrs.get("ignore_label_id")
    local = dist.local_rows(batch_size)
    size = local.stop - local.start
    for set_name, selected in subset.rows.items():
        puzzle_set = split.set(set_name)
        starts, identifiers = puzzle_set.puzzle_indices, puzzle_set.puzzle_identifiers
        for start in range(0, len(selected), batch_size):
            mine = selected[start + local.start:min(start + local.stop, len(selected))]
            count = len(mine)
            inputs = np.full((size, split.seq_len), pad_id, np.uint8)
            labels = np.full((size, split.seq_len), pad_id, np.uint8)
            ids = np.zeros(size, np.int32)
            rows = np.full(size, -1, np.int64)
            if count:
                inputs[:count], labels[:count] = read_rows(puzzle_set.inputs, mine), read_rows(puzzle_set.labels, mine)
                rows[:count] = mine
                ids[:count] = identifiers[np.searchsorted(starts, mine, side="right") - 1]
            batch = to_batch(inputs, labels, ids, ignore)
            batch["labels"][count:] = IGNORE_LABEL_ID
            yield EvalBatch(set_name, rows, batch, rows >= 0)
