"""`hrm build-data arc`: ARC tasks -> augmented, tokenised, streamed into the dataset format.

Split semantics (SPEC 3.3, as the reference): every task is one group in the train split, whose
examples are its train pairs plus, for tasks outside the test set, its test pairs; the test-set
tasks are also groups of the test split, whose examples are their test pairs in order. A group
holds the identity version and up to `aug` augmented versions (dihedral transform + permutation
of colours 1-9), each a puzzle with its own identifier, the same in both splits. Train examples
are translated to a random offset (shared by the input and output of a pair), except one per
version that stays top-left; test examples are never translated. With `no_solutions` (unseen tasks) the test-set tasks' test
outputs are unknown: their test examples are written with every label ignore_label_id.

Streaming: a task's versions are drawn and deduplicated first (hashes only, see arc_kernels),
then encoded and appended in batches of at most `_ROWS_PER_BATCH` rows, so memory does not
grow with `aug`. Each task draws from its own generator seeded by (seed, task index).
"""
from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from hrm.augment.arc import ARC_SEQ_LEN, ARC_SIDE, ARC_VOCAB, NUM_COLOURS
from hrm.builders.arc_checks import check_tasks
from hrm.builders.arc_io import DEFAULT_SUBSETS, ArcTask, packaged_data, read_inputs, resolve_subsets
from hrm.builders.arc_kernels import encode_versions, pack_grids, pair_tables, version_hashes
from hrm.common import HrmError, UsageError, deferred_interrupt, log, progress
from hrm.builders.dataset import DatasetWriter, SetWriter, atomic_directory

RETRY_FACTOR = 5  # candidate versions per wanted version, as the reference (5 x aug tries)
_ROWS_PER_BATCH = 8192  # ~15 MB of inputs + labels per batch
_ZSTD_LEVEL = 3  # compression dominates the build time; level 5 costs twice the CPU for ~5% less disk
_SWAPS_AXES = np.array([0, 1, 0, 1, 0, 0, 1, 1], bool)  # dihedral ids that turn h x w into w x h


@dataclass
class _Packed:
    """A task in kernel form: grids 2p, 2p+1 are the input and output of pair p."""
    cells: np.ndarray
    starts: np.ndarray
    heights: np.ndarray
    widths: np.ndarray
    train_pairs: np.ndarray  # pair indices of the train-split examples
    test_pairs: np.ndarray  # pair indices of the test-split examples (test-set tasks only)

    @classmethod
    def of(cls, task: ArcTask, in_test_set: bool) -> "_Packed":
        # An unknown test output (--no-solutions) is packed as a copy of its input so that the
        # kernels see ordinary pairs; those labels are blanked (nothing scored) when written.
        grids = [grid for inp, out in task.pairs() for grid in (inp, inp if out is None else out)]
        n_train, n_all = len(task.train), len(task.pairs())
        train = np.arange(n_train if in_test_set else n_all)
        test = np.arange(n_train, n_all) if in_test_set else np.arange(0)
        return cls(*pack_grids(grids), train, test)


def draw_versions(packed: _Packed, aug: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(dihedral ids uint8 [V], colour maps uint8 [V, 10]) of the identity then up to `aug`
    distinct augmented versions, drawn as the reference draws them: candidates in order, each
    kept unless the whole task equals a kept version, at most RETRY_FACTOR * aug candidates."""
    transforms = np.zeros(1, np.uint8)
    maps = np.arange(NUM_COLOURS, dtype=np.uint8)[None]
    if aug <= 0:
        return transforms, maps
    with deferred_interrupt():
        tables, shapes = pair_tables(packed.cells, packed.starts, packed.heights, packed.widths)
        kept_hashes = version_hashes(tables, shapes, transforms, maps)
    tried, limit = 0, RETRY_FACTOR * aug
    while len(transforms) <= aug and tried < limit:
        # first a batch of the size still wanted (usually enough), then larger batches
        count = min(limit - tried, aug if tried == 0 else max(2 * (aug + 1 - len(transforms)), 64))
        tried += count
        new_transforms = rng.integers(0, 8, size=count, dtype=np.uint8)
        colours = rng.permuted(np.tile(np.arange(1, NUM_COLOURS, dtype=np.uint8), (count, 1)), axis=1)
        new_maps = np.concatenate([np.zeros((count, 1), np.uint8), colours], axis=1)
        with deferred_interrupt():
            hashes = version_hashes(tables, shapes, new_transforms, new_maps)
        both = np.ascontiguousarray(np.concatenate([kept_hashes, hashes])).view("V16").ravel()
        _, first = np.unique(both, return_index=True)
        fresh = np.sort(first[first >= len(kept_hashes)])[:aug + 1 - len(transforms)] - len(kept_hashes)
        transforms = np.concatenate([transforms, new_transforms[fresh]])
        maps = np.concatenate([maps, new_maps[fresh]])
        kept_hashes = np.concatenate([kept_hashes, hashes[fresh]])
    return transforms, maps


def version_names(task: str, transforms: np.ndarray, maps: np.ndarray) -> list[str]:
    """Reference names: the identity (row 0) is the bare task, others `<task>_t<id>_<digits>`."""
    digits = (maps + ord("0")).astype(np.uint8).view("S10").ravel()
    return [task, *(f"{task}_t{t}_{d.decode()}" for t, d in zip(transforms[1:].tolist(), digits[1:]))]


def _offsets(packed: _Packed, pairs: np.ndarray, transforms: np.ndarray,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random top-left offsets [V, E] where both grids of each pair fit; one pair per version
    (chosen at random) stays at (0, 0)."""
    heights = np.maximum(packed.heights[2 * pairs], packed.heights[2 * pairs + 1])
    widths = np.maximum(packed.widths[2 * pairs], packed.widths[2 * pairs + 1])
    swap = _SWAPS_AXES[transforms][:, None]
    rows_free = ARC_SIDE - np.where(swap, widths, heights)
    cols_free = ARC_SIDE - np.where(swap, heights, widths)
    rows = rng.integers(0, rows_free + 1).astype(np.int64)
    cols = rng.integers(0, cols_free + 1).astype(np.int64)
    top_left = rng.integers(0, len(pairs), size=len(transforms))
    rows[np.arange(len(transforms)), top_left] = 0
    cols[np.arange(len(transforms)), top_left] = 0
    return rows, cols


class _BackgroundWriter:
    """Runs the dataset writes, in order, on one background thread, so that encoding the next
    batch overlaps compressing the previous one (numba kernels and zstd release the GIL). The
    queue is short, so memory stays bounded. Every zarr write goes through this thread."""

    def __init__(self, depth: int = 3):
        self._jobs: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._abort = False
        self._thread = threading.Thread(target=self._run, name="arc-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._error is None and not self._abort:
                try:
                    job()
                except BaseException as error:  # re-raised in the building thread
                    self._error = error

    def submit(self, job: Callable[[], Any]) -> None:
        if self._error is not None:
            raise self._error
        self._jobs.put(job)

    def finish(self, abort: bool = False) -> None:
        """Wait for the queued writes (or drop them with `abort`); re-raise a write error."""
        self._abort = abort
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
        if self._error is not None and not abort:
            raise self._error


def _write_group(submit: Callable, target: SetWriter, packed: _Packed, pairs: np.ndarray, transforms: np.ndarray,
                 maps: np.ndarray, ids: np.ndarray, rng: np.random.Generator | None, unscored: bool = False) -> int:
    """Append one task's versions (examples = `pairs`) as one group, in bounded batches;
    translated when `rng` is given; with `unscored` every label is ignore_label_id (0: the
    outputs are unknown). Returns the rows written."""
    per_batch = max(1, _ROWS_PER_BATCH // len(pairs))
    for start in range(0, len(transforms), per_batch):
        stop = min(start + per_batch, len(transforms))
        batch_t, batch_m = transforms[start:stop], maps[start:stop]
        if rng is None:
            rows = cols = np.zeros((stop - start, len(pairs)), np.int64)
        else:
            rows, cols = _offsets(packed, pairs, batch_t, rng)
        inputs = np.empty(((stop - start) * len(pairs), ARC_SEQ_LEN), np.uint8)
        labels = np.empty_like(inputs)
        with deferred_interrupt():
            encode_versions(packed.cells, packed.starts, packed.heights, packed.widths, 2 * pairs, 2 * pairs + 1,
                            batch_t, batch_m, rows, cols, inputs, labels)
        if unscored:
            labels[:] = 0
        submit(partial(target.append_to_group, inputs, labels, examples_per_puzzle=np.full(stop - start, len(pairs)),
                       last=stop == len(transforms), puzzle_identifiers=ids[start:stop],
                       puzzle_fields={"aug_dihedral": batch_t, "aug_colour_map": batch_m}))
    return len(transforms) * len(pairs)


def _load(inputs: Sequence[str] | None, subsets: Sequence[str], test_set: str,
          skip_invalid: bool, no_solutions: bool = False) -> tuple[list[ArcTask], Any]:
    if test_set not in subsets and not any(e.startswith(f"{test_set}=") for e in inputs or ()):
        raise UsageError(f"--test-set {test_set} is not one of --subsets ({' '.join(subsets)})")
    unsolved = test_set if no_solutions else None
    if inputs:
        tasks = read_inputs(inputs, subsets, skip_invalid=skip_invalid, unsolved_subset=unsolved)
    else:
        with packaged_data() as folder:
            tasks = read_inputs([str(folder / "arc-agi")], subsets, skip_invalid=skip_invalid,
                                unsolved_subset=unsolved)
    if not tasks:
        raise HrmError("no valid tasks to build from")
    return check_tasks(tasks, test_set)


def build_arc(out: str | os.PathLike, *, inputs: Sequence[str] | None = None,
              subsets: Sequence[str] | None = None, test_set: str | None = None,
              aug: int = 1000, seed: int = 0, skip_invalid: bool = False, force: bool = False,
              no_solutions: bool = False) -> dict[str, Any]:
    """Build an ARC dataset at `out`; returns a summary (counts, shortfalls, seconds). Without
    `subsets`/`test_set`: the default subsets present in `inputs`, and `evaluation` (arc_io.resolve_subsets).

    `no_solutions` (unseen tasks, the competition setting): the test outputs of the `test_set`
    tasks are not read; their test inputs form the test split with nothing scored (all labels
    ignore_label_id) and the test split's attr `has_solutions` is false."""
    started = time.perf_counter()
    if aug < 0:
        raise UsageError(f"--aug must be >= 0, got {aug}")
    subsets, test_set = resolve_subsets(inputs, subsets, test_set, packaged=DEFAULT_SUBSETS)
    tasks, report = _load(inputs, subsets, test_set, skip_invalid, no_solutions)
    builder = {"input": list(inputs) if inputs else "packaged", "subsets": subsets, "test_set": test_set,
               "aug": aug, "seed": seed, "skip_invalid": skip_invalid, "no_solutions": no_solutions}
    shortfall: dict[str, int] = {}
    counts = {"train": 0, "test": 0}
    with atomic_directory(out, force=force) as tmp:
        writer = DatasetWriter(tmp, task="arc", seed=seed, builder=builder, compression_level=_ZSTD_LEVEL)
        splits = {name: writer.split(name, seq_len=ARC_SEQ_LEN, vocab_size=ARC_VOCAB,
                                     **({"has_solutions": not no_solutions} if name == "test" else {})).set("all")
                  for name in ("train", "test")}
        background, next_id = _BackgroundWriter(), writer.num_identifiers
        try:
            for index, task in enumerate(progress(tasks, desc="arc", unit="task")):
                rng = np.random.default_rng([seed, index])
                packed = _Packed.of(task, task.subset == test_set)
                transforms, maps = draw_versions(packed, aug, rng)
                if len(transforms) < aug + 1:
                    shortfall[task.name] = len(transforms) - 1
                # identifiers are consecutive, so they are known before the writer thread adds them
                ids = np.arange(next_id, next_id + len(transforms), dtype=np.int32)
                next_id += len(transforms)
                background.submit(partial(writer.add_identifiers, version_names(task.name, transforms, maps)))
                counts["train"] += _write_group(background.submit, splits["train"], packed, packed.train_pairs,
                                                transforms, maps, ids, rng)
                if len(packed.test_pairs):
                    counts["test"] += _write_group(background.submit, splits["test"], packed, packed.test_pairs,
                                                   transforms, maps, ids, None, unscored=not task.has_solutions)
            background.finish()
        except BaseException:
            background.finish(abort=True)  # no write may outlive the temporary directory
            raise
        assert writer.num_identifiers == next_id
        if shortfall:
            worst = min(shortfall, key=shortfall.get)
            log(f"warning: {len(shortfall)} of {len(tasks)} tasks have fewer than {aug} distinct augmented "
                f"versions (fewest: {worst} with {shortfall[worst]}); listed in the dataset attrs aug_shortfall")
        subset_counts = {s: sum(t.subset == s for t in tasks) for s in dict.fromkeys(t.subset for t in tasks)}
        attrs: dict[str, Any] = {"arc_tasks": subset_counts, "test_set": test_set, "aug": aug,
                                 "aug_shortfall_tasks": len(shortfall), "aug_shortfall": shortfall}
        if report.overlaps:
            attrs["test_pair_overlaps"] = report.overlaps
        if report.dropped_duplicates or report.renamed:
            attrs["duplicate_task_ids"] = {"dropped": report.dropped_duplicates, "renamed": report.renamed}
        writer.close(**attrs)
        identifiers = writer.num_identifiers
    return {"out": str(Path(out)), "tasks": len(tasks), "subsets": subset_counts, "test_set": test_set,
            "test_tasks": subset_counts.get(test_set, 0), "aug": aug,
            "puzzle_identifiers": identifiers, "train_examples": counts["train"], "test_examples": counts["test"],
            "shortfall_tasks": len(shortfall), "has_solutions": not no_solutions,
            "seconds": round(time.perf_counter() - started, 2)}
