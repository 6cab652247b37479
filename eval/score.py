"""Scoring: stream predictions (from tables or a model), vote, and summarise (SPEC 6).

`Scorer` accumulates batches of predictions from any number of sources (predictions tables,
checkpoints: they vote together, which is checkpoint ensembling). Per batch it reads the
labels (and for sudoku/maze the inputs) of exactly the rows predicted, computes the
per-prediction metrics in the version's own frame, maps predictions and labels back to the
original frame (`eval.inverse`) and keeps only (key, answer hash, q_halt, right, valid) per
prediction, so memory stays ~30 bytes per prediction plus, for a submission, one grid per
distinct ARC answer.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence, TypeVar

import numpy as np
import pyarrow as pa

from hrm.common import HrmError, log
from hrm.common.prefetch import prefetched
from hrm.builders.dataset import Dataset
from hrm.augment.arc import parse_version_name
from hrm.eval.inverse import SetFrames
from hrm.eval.metrics import group_means, maze_valid, pass_ks, sudoku_valid, token_metrics
from hrm.eval.pool import DEFAULT_DRAWS, PoolVotes, pool_curve
from hrm.eval.batches import read_rows
from hrm.eval.predictions import PredictionBatch, iter_predictions
from hrm.eval.vote import RANKERS, Votes, best_rank, vote

if TYPE_CHECKING:
    from hrm.eval.subset import Subset

T = TypeVar("T")


@dataclass
class _Source:
    name: str
    predictions: int = 0
    counted: int = 0
    exact: float = 0.0
    token: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {"source": self.name, "predictions": self.predictions,
                "exact_accuracy": self.exact / max(self.counted, 1),
                "token_accuracy": self.token / max(self.counted, 1)}


@dataclass
class ScoreResult:
    summary: dict[str, Any]
    per_group: pa.Table
    votes: Votes
    group_names: list[str]
    key_group: np.ndarray
    group_key_start: np.ndarray
    grids: dict[int, np.ndarray] = field(default_factory=dict)


class Scorer:
    def __init__(self, dataset: Dataset, split: str = "test", *, keep_grids: bool = False):
        self.dataset, self.split_name, self.task = dataset, split, dataset.task
        self.split = dataset.split(split)
        self.ignore_label_id = int(self.split.attrs["ignore_label_id"])
        self.keep_grids = keep_grids and self.task == "arc"
        self.frames: dict[str, SetFrames] = {}
        self.example_offset: dict[str, int] = {}  # a prediction's version: example_offset[set] + row
        key_offset = example_offset = 0
        for name, puzzle_set in self.split.sets.items():
            self.frames[name] = SetFrames(self.task, puzzle_set, key_offset)
            self.example_offset[name] = example_offset
            key_offset += self.frames[name].num_keys
            example_offset += puzzle_set.num_examples
        self.num_keys = key_offset
        self.num_groups = sum(f.num_groups for f in self.frames.values())
        # Global group index of every key, and where each global group's keys start.
        starts, group_sets, group_offset = [], [], 0
        key_group = np.zeros(self.num_keys, np.int64)
        for name, frames in self.frames.items():
            inputs = np.diff(frames.group_key_start)
            key_group[frames.key_offset:frames.key_offset + frames.num_keys] = (
                group_offset + np.repeat(np.arange(frames.num_groups), inputs))
            starts.append(frames.group_key_start[:-1])
            group_sets += [name] * frames.num_groups
            group_offset += frames.num_groups
        self.key_group = key_group
        self.group_key_start = np.concatenate([*starts, [self.num_keys]]).astype(np.int64)
        self.group_sets = group_sets
        self.truth_hash, self.truth_ok = self._truth()
        self.sources: list[_Source] = []
        self._parts: dict[str, list[np.ndarray]] = {k: [] for k in ("key", "version", "hash", "q_halt", "residual", "ok", "right", "valid", "exact", "counted")}
        self.grids: dict[int, np.ndarray] = {}
        self.subset: "Subset | None" = None
        self._row_masks: dict[str, np.ndarray] = {}

    def restrict(self, subset: "Subset | None") -> None:
        """Score only the items and rows of `subset` (eval/subset.py); other rows are ignored."""
        self.subset = subset
        self._row_masks = {}
        if subset is not None:
            for name, rows in subset.rows.items():
                mask = np.zeros(self.split.set(name).num_examples, bool)
                mask[rows] = True
                self._row_masks[name] = mask

    def versions_per_group(self) -> float:
        """The mean number of versions (a puzzle and its augmented copies) per scored item: the
        subset's items and the versions it kept of them, or every item."""
        versions = []
        for name, frames in self.frames.items():
            puzzle_set = self.split.set(name)
            group_indices = puzzle_set.group_indices
            group_of_puzzle = np.repeat(np.arange(frames.num_groups), np.diff(group_indices))
            kept = np.ones(len(group_of_puzzle), bool)
            if name in self._row_masks:  # a version is kept when its rows are (all or none are)
                kept = self._row_masks[name][puzzle_set.puzzle_indices[:-1]]
            versions.append(np.bincount(group_of_puzzle[kept], minlength=frames.num_groups))
        per_group = np.concatenate(versions) if versions else np.zeros(0, np.int64)
        chosen = self.subset.groups if self.subset is not None else np.ones(self.num_groups, bool)
        return float(per_group[chosen].mean()) if chosen.any() else 0.0

    def _truth(self) -> tuple[np.ndarray, np.ndarray]:
        """The right answer of every key, from the labels of its group's unaugmented version:
        a version whose descriptors do not invert correctly then disagrees with it."""
        truth_hash, truth_ok = np.zeros(self.num_keys, np.uint64), np.zeros(self.num_keys, bool)
        for name, frames in self.frames.items():
            puzzle_set = self.split.set(name)
            puzzles = frames.identity_puzzles()
            starts, stops = puzzle_set.puzzle_indices[puzzles], puzzle_set.puzzle_indices[puzzles + 1]
            lengths = stops - starts
            run_start = np.repeat(np.cumsum(lengths) - lengths, lengths)
            rows = np.repeat(starts, lengths) + np.arange(int(lengths.sum())) - run_start
            labels = read_rows(puzzle_set.labels, rows)
            answers = frames.answers(rows, labels, labels, self.ignore_label_id)
            keys = frames.example_key[rows]
            truth_hash[keys], truth_ok[keys] = answers.hashes, answers.ok
        return truth_hash, truth_ok

    def add_source(self, name: str) -> int:
        self.sources.append(_Source(name))
        return len(self.sources) - 1

    def add_table(self, path: str | os.PathLike) -> None:
        """Score every row of a predictions table (validated against the dataset)."""
        source = self.add_source(str(path))
        # Parquet decoding, zarr reads and the scoring kernels run in three threads (all release
        # the GIL for their heavy part), so that on 2 cores they overlap.
        batches = prefetched(iter_predictions(path, self.dataset, self.split_name), depth=2)
        for batch, labels, inputs in prefetched(self._with_rows(batches), depth=2):
            self.add(batch, source, labels, inputs)

    def rows_of(self, batch: PredictionBatch) -> tuple[np.ndarray, np.ndarray | None]:
        """The dataset's labels and (sudoku/maze) inputs of the rows `batch` predicts."""
        puzzle_set = self.split.set(batch.set_name)
        labels = read_rows(puzzle_set.labels, batch.examples)
        inputs = read_rows(puzzle_set.inputs, batch.examples) if self.task in ("sudoku", "maze") else None
        return labels, inputs

    def _with_rows(self, batches: Iterable[PredictionBatch]) -> Iterator[tuple]:
        for batch in batches:
            yield batch, *self.rows_of(batch)

    def add(self, batch: PredictionBatch, source: int, labels: np.ndarray | None = None,
            inputs: np.ndarray | None = None) -> None:
        """Score one batch; `labels`/`inputs` are the dataset rows of `batch.examples` when
        already read."""
        puzzle_set = self.split.set(batch.set_name)
        frames = self.frames[batch.set_name]
        examples, predictions = batch.examples, np.asarray(batch.predictions, np.uint8)
        if self.subset is not None:  # a table of the whole split scored on a subset
            keep = self._row_masks[batch.set_name][examples]
            if not keep.all():
                examples, predictions = examples[keep], predictions[keep]
                batch = PredictionBatch(batch.set_name, examples, predictions, np.asarray(batch.q_halt)[keep])
                labels = labels[keep] if labels is not None else None
                inputs = inputs[keep] if inputs is not None else None
        if labels is None:
            labels = read_rows(puzzle_set.labels, examples)
        counted, exact, token = token_metrics(predictions, labels, self.ignore_label_id)
        stats = self.sources[source]
        stats.predictions += len(examples)
        stats.counted += int(counted.sum())
        stats.exact += float(exact.sum())
        stats.token += float(token[counted].sum())
        answers = frames.answers(examples, predictions, labels, self.ignore_label_id)
        keys = frames.example_key[examples]
        right = answers.ok & self.truth_ok[keys] & (answers.hashes == self.truth_hash[keys])
        if self.task in ("sudoku", "maze"):
            if inputs is None:
                inputs = read_rows(puzzle_set.inputs, examples)
            valid = (sudoku_valid if self.task == "sudoku" else maze_valid)(predictions, inputs)
        else:
            valid = right
        if self.keep_grids:
            candidates = np.flatnonzero(answers.ok)
            unique, first = np.unique(answers.hashes[candidates], return_index=True)
            for answer_hash, row in zip(unique.tolist(), candidates[first].tolist()):
                if answer_hash not in self.grids:
                    self.grids[answer_hash] = answers.grid(row)
        residual = np.full(len(examples), np.nan, np.float32) if batch.residual is None else batch.residual
        versions = examples + self.example_offset[batch.set_name]
        for name, values in (("key", keys), ("version", versions), ("hash", answers.hashes), ("q_halt", batch.q_halt),
                             ("residual", residual), ("ok", answers.ok), ("right", right),
                             ("valid", valid), ("exact", exact), ("counted", counted)):
            self._parts[name].append(np.asarray(values))

    def _column(self, name: str, dtype) -> np.ndarray:
        parts = self._parts[name]
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)

    def pool_curve(self, sizes: Sequence[int], vote_k: int = 2, rank: str = "votes", draws: int = DEFAULT_DRAWS,
                   seed: int = 0) -> dict[str, Any]:
        """`accuracy_by_pool`: pass@1..pass@max(2, vote_k) when each key votes with only N of its
        versions, for each N in `sizes` (eval/pool.py)."""
        votes = PoolVotes(self._column("key", np.int64), self._column("version", np.int64),
                          self._column("ok", bool), self._column("hash", np.uint64),
                          self._column("q_halt", np.float64), self._column("residual", np.float64),
                          self._column("right", bool))
        chosen = self.subset.groups if self.subset is not None else np.ones(self.num_groups, bool)
        return pool_curve(votes, sizes, list(range(1, max(2, vote_k) + 1)), key_group=self.key_group,
                          chosen_groups=chosen, draws=draws, seed=seed, rank=rank)

    def group_names(self) -> list[str]:
        """ARC: the original task name of every group; otherwise the set and group index."""
        names: list[str] = []
        for set_name, frames in self.frames.items():
            if self.task == "arc":
                puzzle_set = self.split.set(set_name)
                ids = puzzle_set.puzzle_identifiers[frames.identity_puzzles()]
                unique, inverse = np.unique(ids, return_inverse=True)
                found = read_rows(self.dataset.root["identifiers"], unique)
                names += [parse_version_name(str(found[i]))[0] for i in inverse]
            else:
                names += [f"{set_name}/{g}" for g in range(frames.num_groups)]
        return names

    def result(self, vote_k: int = 2, rank: str = "votes") -> ScoreResult:
        """Rank every key's answers with `rank` (eval.vote.RANKERS) and summarise."""
        if rank not in RANKERS:
            raise HrmError(f"--rank must be one of {', '.join(RANKERS)}, got {rank!r}")
        keys, ok = self._column("key", np.int64), self._column("ok", bool)
        exact, counted = self._column("exact", bool), self._column("counted", bool)
        residual = self._column("residual", np.float64)[ok]
        if rank == "residual" and np.isnan(residual).any():
            raise HrmError("--rank residual needs every prediction's residual; these predictions have none "
                           "(a table written without test-time candidates, or by another tool)")
        votes = vote(keys[ok], self._column("hash", np.uint64)[ok], self._column("q_halt", np.float64)[ok],
                     residual, rank)
        right_answer = votes.any_vote(self._column("right", bool)[ok])
        votes_per_key = np.bincount(keys[ok], minlength=self.num_keys)
        ks = pass_ks(self.task, vote_k, int(votes_per_key.max()) if self.num_keys else 0)
        solved = best_rank(votes, right_answer, self.num_keys)[:, None] < np.array(ks)[None]
        per_group = group_means(solved, self.key_group, self.num_groups)
        # The items scored: all, or a subset's (the others are neither solved nor failed).
        chosen = self.subset.groups if self.subset is not None else np.ones(self.num_groups, bool)
        scored_groups = int(chosen.sum())
        columns: dict[str, Any] = {f"pass@{k}": per_group[:, i] for i, k in enumerate(ks)}
        summary: dict[str, Any] = {"task": self.task, "data": str(self.dataset.path), "split": self.split_name,
                                   "scored": True}
        total_counted = int(counted.sum())
        summary["exact_accuracy"] = float(exact.sum()) / max(total_counted, 1)
        summary["token_accuracy"] = sum(s.token for s in self.sources) / max(total_counted, 1)
        summary.update({f"pass@{k}": float(per_group[chosen, i].mean()) if scored_groups else 0.0
                        for i, k in enumerate(ks)})
        if self.task == "arc":
            summary["score"] = summary.get("pass@2", summary["pass@1"])
        else:
            valid = self._column("valid", bool)
            valid_solved = best_rank(votes, votes.any_vote(valid[ok]), self.num_keys)[:, None] < np.array(ks)[None]
            valid_group = group_means(valid_solved, self.key_group, self.num_groups)
            summary["valid_accuracy"] = float((valid & counted).sum()) / max(total_counted, 1)
            summary.update({f"valid@{k}": float(valid_group[chosen, i].mean()) if scored_groups else 0.0
                            for i, k in enumerate(ks)})
            columns.update({f"valid@{k}": valid_group[:, i] for i, k in enumerate(ks)})
        chosen_keys = chosen[self.key_group]
        scored_keys = int(chosen_keys.sum())
        covered = int(((votes_per_key > 0) & chosen_keys).sum())
        if covered < scored_keys:
            log(f"warning: {scored_keys - covered} of {scored_keys} test inputs have no valid "
                f"prediction; they count as unsolved")
        summary.update({"predictions": int(len(keys)), "groups": scored_groups, "test_inputs": scored_keys,
                        "covered_test_inputs": covered, "max_votes_per_input": int(votes_per_key.max()) if self.num_keys else 0,
                        "sources": [s.summary() for s in self.sources]})
        row_group = self.key_group[keys]
        group_rows = np.bincount(row_group[counted], minlength=self.num_groups)
        group_exact = np.bincount(row_group[exact], minlength=self.num_groups)
        names = self.group_names()
        local = np.concatenate([np.arange(f.num_groups) for f in self.frames.values()]) if self.frames else np.zeros(0)
        table = pa.table({
            "set": pa.array(self.group_sets, pa.string()),
            "group": pa.array(local.astype(np.int64)),
            "name": pa.array(names, pa.string()),
            "test_inputs": pa.array(np.diff(self.group_key_start)),
            "predictions": pa.array(np.bincount(row_group, minlength=self.num_groups).astype(np.int64)),
            "exact_accuracy": pa.array(group_exact / np.maximum(group_rows, 1)),
            **{name: pa.array(values) for name, values in columns.items()},
        })
        summary["subset"] = self.subset.summary() if self.subset is not None else None
        if self.subset is not None:
            table = table.filter(pa.array(chosen))
        if not self.split.has_solutions:
            summary, table = _unscored(summary, table)
        return ScoreResult(summary, table, votes, names, self.key_group, self.group_key_start, self.grids)


_UNSCORED_KEYS = ("exact_accuracy", "token_accuracy", "valid_accuracy", "score")


def _unscored(summary: dict[str, Any], table: pa.Table) -> tuple[dict[str, Any], pa.Table]:
    """A split without solutions (`--no-solutions`): every accuracy is null, not 0%, and
    `scored` says why; the predictions (and a submission) are still made."""
    summary = {**summary, "scored": False,
               "not_scored_reason": "the split has no solutions (built with --no-solutions)"}
    for key in list(summary):
        if key in _UNSCORED_KEYS or key.startswith(("pass@", "valid@")):
            summary[key] = None
    for name in table.column_names:
        if name == "exact_accuracy" or name.startswith(("pass@", "valid@")):
            table = table.set_column(table.column_names.index(name), name, pa.nulls(len(table), pa.float64()))
    for source in summary["sources"]:
        source["exact_accuracy"] = source["token_accuracy"] = None
    return summary, table
