"""A seeded subset of a split to evaluate: N items (ARC tasks, sudoku/maze puzzles) and at most
M versions of each, so that an evaluation can be sized to the time at hand.

    subset = choose_subset(scorer.split, scorer.frames, max_items=100, max_versions=8, seed=0)
    scorer.restrict(subset)            # score only these items and rows
    for item in eval_batches(split, 768, dist, rows=subset.rows): ...   # eval.batches

An item is a group of the split (one original task or puzzle with all its augmented versions).
Items are drawn without replacement by `numpy.random.default_rng(seed)`; within an item the
unaugmented version is always kept (it is the canonical frame every other version is mapped
back to) and the other M - 1 versions are drawn from the rest. The summary records the subset
(`items`, `of_items`, `max_versions`, `seed`) so that a score is never mistaken for a full one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hrm.common import UsageError

if TYPE_CHECKING:
    from hrm.builders.dataset import Split
    from hrm.eval.inverse import SetFrames


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
