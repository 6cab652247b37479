"""Sudoku-Extreme builder (SPEC 3.1): generate (or import) hard puzzles, augment, write.

Generation: for every puzzle a random solved grid, a minimal unique puzzle by clue removal,
then a hill-climbing search for hardness (see `builders.sudoku_kernels.generate_one`), all in
numba and in parallel over puzzles. Puzzle i of a split uses its own random stream derived
from (seed, split, i), so the output does not depend on thread scheduling or batch sizes.
A minority (`easy_fraction`) gets no hardness search, as the reference mixes easy puzzles with
hard ones; `--min-difficulty` makes every puzzle climb until it reaches the rating. With
`--blanks N` a puzzle is instead a random solved grid with clues removed (keeping it unique)
until exactly N cells are blank: the smoke runs' 4x4 task, whose minimal puzzles are too few.

Held out: a generated test puzzle equal to a train puzzle up to symmetry (`puzzle_keys`: the
canonical form for 4x4, the puzzle itself for 9x9) is drawn again, so that test accuracy
measures generalisation and not recall of a train puzzle's augmented versions.

Augmentation: each group is the original puzzle (identity descriptors) followed by `aug`
random versions (`augment.sudoku`). A version equal to one already kept for that puzzle
(same input and label, found by a 64-bit hash) is redrawn, up to `_MAX_DRAWS_PER_VERSION`
draws per wanted version; a 4x4 puzzle has at most 4!*2*8*8 = 3072 versions, so large `aug`
caps at what exists and the build reports the groups that came out short.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numba
import numpy as np

from hrm.augment.sudoku import augment_pairs, canonical_sudoku, draw_transforms
from hrm.common import HrmError, UsageError, deferred_interrupt, log, progress
from hrm.builders.dataset import DatasetWriter, SplitWriter, atomic_directory
from hrm.builders.sudoku_import import import_csv
from hrm.builders.sudoku_kernels import generate_batch, generate_blanks_batch, sudoku_tables

DEFAULT_SEARCH_STEPS = 70  # hill-climbing proposals per hard puzzle (mean rating ~25 on 9x9, ~57 puzzles/s on 2 cores)
DEFAULT_EASY_FRACTION = 0.1  # puzzles left as random minimal puzzles (rating ~2)
_MAX_DRAWS_PER_VERSION = 5  # dedup retry bound, as the reference's 5 x K for ARC
_MAX_GRIDS_PER_BLANKS_PUZZLE = 1000  # random solved grids tried per --blanks puzzle
_MAX_REDRAWS = 200  # new draws of a test puzzle that coincides with a train puzzle
_GENERATE_CHUNK = 64  # puzzles per parallel kernel call (progress and Ctrl-C granularity)
_ROWS_PER_APPEND = 1 << 16  # examples augmented and written per step (bounded memory)
_SPLIT_TAGS = {"train": 0, "test": 1}
# zstd level of every array: level 1 is ~4x faster than 5 and even smaller on sudoku tokens
# (0.361 vs 0.383 of raw; both near the order-0 entropy bound of ~0.31, see benchmarks/README)
_ZSTD_LEVEL = 1
# Rating histogram bins (ratings are heavy-tailed: most below 50, a few in the hundreds)
_RATING_EDGES = (0, 1, 5, 10, 20, 30, 50, 100, 200, 500)


def rating_histogram(ratings: np.ndarray) -> list[dict[str, Any]]:
    """[{"from": lo, "to": hi or None (open), "count": n}, ...] over fixed, widening bins."""
    edges = np.array([*_RATING_EDGES, np.iinfo(np.int64).max])
    counts = np.histogram(np.asarray(ratings, np.int64), bins=edges)[0] if len(ratings) else 0 * edges[:-1]
    return [{"from": int(lo), "to": int(hi) - 1 if i < len(edges) - 2 else None, "count": int(c)}
            for i, (lo, hi, c) in enumerate(zip(edges, edges[1:], counts))]


@dataclass
class SplitSummary:
    groups: int = 0
    puzzles: int = 0
    examples: int = 0
    ratings: list[np.ndarray] = field(default_factory=list)
    short_groups: int = 0  # groups with fewer versions than asked (only possible for 4x4)
    skipped_rows: int = 0  # CSV rows skipped with --skip-invalid
    originals: set[bytes] = field(default_factory=set)  # distinct originals (`puzzle_keys`)
    in_train: int = 0  # (test) originals that are also train originals
    box: int = 3

    def as_dict(self) -> dict[str, Any]:
        ratings = np.concatenate(self.ratings) if self.ratings else np.zeros(0, np.int64)
        return {"groups": self.groups, "puzzles": self.puzzles, "examples": self.examples,
                "rating_mean": round(float(ratings.mean()), 3) if len(ratings) else None,
                "rating_min": int(ratings.min()) if len(ratings) else None,
                "rating_max": int(ratings.max()) if len(ratings) else None,
                "rating_median": float(np.median(ratings)) if len(ratings) else None,
                "rating_histogram": rating_histogram(ratings), "short_groups": self.short_groups,
                "skipped_rows": self.skipped_rows, "repeated_puzzles": self.groups - len(self.originals),
                "puzzles_also_in_train": self.in_train}


def puzzle_keys(puzzles: np.ndarray, box: int) -> list[bytes]:
    """Keys that are equal for puzzles equal up to the augmentation group (transpose, line
    permutations, digit relabelling): the canonical form for 4x4, whose orbits are cheap to
    enumerate (128 line transforms) and small enough for train and test to meet by chance;
    the puzzle itself for 9x9, where an orbit has 1.2e12 members and two generated puzzles
    coincide up to symmetry with negligible probability."""
    grids = canonical_sudoku(puzzles, box) if box == 2 else np.asarray(puzzles, np.int8)
    return [grid.tobytes() for grid in grids]


def max_blanks(box: int) -> int:
    """The most blanks a unique puzzle can have: 4x4 needs 4 clues, 9x9 needs 17."""
    return {2: 12, 3: 64}[box]


def generate_puzzles(count: int, *, box: int = 3, seed: int = 0, split: str = "train",
                     search_steps: int = DEFAULT_SEARCH_STEPS,
                     easy_fraction: float = DEFAULT_EASY_FRACTION, min_difficulty: int = 0,
                     blanks: int = 0, exclude: set[bytes] | None = None, distinct: bool = False,
                     chunk: int = _GENERATE_CHUNK) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (puzzles int8[B, N], solutions int8[B, N], ratings int64[B]) chunk by chunk.

    Every puzzle is unique and rated: minimal and hardened by search, or with exactly `blanks`
    blanks when `blanks` > 0. A puzzle whose `puzzle_keys` key is in `exclude` (the train split's,
    when generating test) or, with `distinct` (the held-out split), equals an earlier puzzle of
    this split up to symmetry is drawn again from a new stream. Puzzle i depends only on (seed,
    split, i), `exclude` and the puzzles before it."""
    n = box * box
    peers, units = sudoku_tables(box)
    tag = _SPLIT_TAGS[split]
    seeds = np.random.SeedSequence([seed, tag]).generate_state(count, np.uint64)
    easy_draw = np.random.SeedSequence([seed, tag, 1]).generate_state(count, np.uint64)
    easy = (easy_draw >> np.uint64(11)).astype(np.float64) * 2.0**-53 < easy_fraction  # uniform [0, 1)
    steps = np.where(easy, 0, search_steps).astype(np.int64)
    # Past the budget, a puzzle under --min-difficulty keeps climbing up to this many proposals.
    max_steps = max(10 * search_steps, 1000) if min_difficulty > 0 else 0

    def generate(seeds: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # chunk size 1: threads take puzzles one by one (their cost varies ~10x)
        with numba.parallel_chunksize(1), deferred_interrupt():
            if blanks:
                puzzles, solutions, ratings, _ = generate_blanks_batch(seeds, blanks, peers, units, n,
                                                                       _MAX_GRIDS_PER_BLANKS_PUZZLE)
            else:
                puzzles, solutions, ratings, _ = generate_batch(seeds, steps, peers, units, n,
                                                                min_difficulty, max_steps)
        if blanks and (ratings < 0).any():
            raise HrmError(f"could not make a unique {n}x{n} puzzle with {blanks} blanks from "
                           f"{_MAX_GRIDS_PER_BLANKS_PUZZLE} random grids; choose fewer --blanks")
        if (ratings < min_difficulty).any():
            best = int(ratings[ratings < min_difficulty].max())
            raise HrmError(f"could not reach --min-difficulty {min_difficulty} within {max_steps} "
                           f"search steps (a puzzle stopped at {best}); choose a lower difficulty")
        return puzzles, solutions, ratings

    taken: set[bytes] = set()  # the split's own puzzles so far (a held-out split never repeats itself)

    def coincides(puzzles: np.ndarray) -> np.ndarray:
        """Rows to draw again: in `exclude`, or (with `distinct`) equal to an earlier puzzle of
        the split up to symmetry (the first occurrence stays)."""
        if not exclude and not distinct:
            return np.zeros(len(puzzles), bool)
        here: set[bytes] = set()
        clash = np.zeros(len(puzzles), bool)
        for i, key in enumerate(puzzle_keys(puzzles, box)):
            if (exclude and key in exclude) or (distinct and (key in taken or key in here)):
                clash[i] = True
            else:
                here.add(key)
        return clash

    for start in range(0, count, chunk):
        stop = min(count, start + chunk)
        puzzles, solutions, ratings = generate(seeds[start:stop], steps[start:stop])
        clash = np.flatnonzero(coincides(puzzles))
        for attempt in range(1, _MAX_REDRAWS + 1):
            if not len(clash):
                break
            redraw = np.array([np.random.SeedSequence([seed, tag, 4, start + i, attempt]).generate_state(1, np.uint64)
                               for i in clash], np.uint64).reshape(-1)
            puzzles[clash], solutions[clash], ratings[clash] = generate(redraw, steps[start + clash])
            clash = np.flatnonzero(coincides(puzzles))  # a redrawn row may repeat another redrawn one
        if len(clash):
            others = "train puzzles or each other" if distinct else "train puzzles"
            raise HrmError(f"{split} puzzles keep coinciding with {others} up to symmetry after "
                           f"{_MAX_REDRAWS} redraws: there are not that many distinct {n}x{n} puzzles of "
                           "this kind; use a smaller --train-size / --test-size or other --blanks")
        if distinct:
            taken.update(puzzle_keys(puzzles, box))
        yield puzzles, solutions, ratings


def _versions(puzzles: np.ndarray, solutions: np.ndarray, group: np.ndarray, identity: np.ndarray,
              box: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draw a transform per row (identity where `identity`), apply it to its group's original."""
    seeds = rng.integers(0, np.iinfo(np.int64).max, len(group), dtype=np.int64).astype(np.uint64)
    with deferred_interrupt():
        transpose, row_perm, col_perm, digit_map = draw_transforms(seeds, box)
    n = box * box
    transpose[identity] = 0
    row_perm[identity] = col_perm[identity] = np.arange(n, dtype=np.uint8)
    digit_map[identity] = np.arange(n + 1, dtype=np.uint8)
    with deferred_interrupt():
        inputs, labels, hashes = augment_pairs(puzzles, solutions, group, transpose, row_perm,
                                               col_perm, digit_map)
    return {"group": group, "transpose": transpose, "row_perm": row_perm, "col_perm": col_perm,
            "digit_map": digit_map, "inputs": inputs, "labels": labels, "hash": hashes}


def _first_occurrences(hashes: np.ndarray) -> np.ndarray:
    """bool mask: the row is the first (lowest index) with its hash (which covers the group)."""
    order = np.argsort(hashes, kind="stable")
    repeated = hashes[order][1:] == hashes[order][:-1]
    keep = np.ones(len(hashes), bool)
    keep[order[1:][repeated]] = False
    return keep


def _draw_versions(puzzles: np.ndarray, solutions: np.ndarray, versions: int, box: int,
                   rng: np.random.Generator) -> dict[str, np.ndarray]:
    """`versions` distinct versions per original, the identity first, grouped by original.

    Each original gets the identity and versions-1 random transforms. A version equal to an
    earlier one of the same original (equal 64-bit hash of group, input and label; a collision
    would only cause a needless redraw) is dropped, and short groups draw again - twice their
    deficit per round - until they have enough or reach the bound of draws (4x4 puzzles have
    few distinct versions; for 9x9 the first round practically always suffices)."""
    groups = len(puzzles)
    group = np.repeat(np.arange(groups), versions)
    identity = np.zeros(len(group), bool)
    identity[::versions] = True
    every = _versions(puzzles, solutions, group, identity, box, rng)
    keep = _first_occurrences(every["hash"])
    if keep.all():  # rows are already grouped, identity first
        del every["hash"]
        return {**every, "versions": np.full(groups, versions)}
    drawn = np.full(groups, versions)
    limit = 1 + _MAX_DRAWS_PER_VERSION * (versions - 1)
    while True:
        need = versions - np.bincount(every["group"][keep], minlength=groups)
        asks = np.minimum(np.where(need > 0, 2 * need + 4, 0), limit - drawn)
        if not asks.any():
            break
        group = np.repeat(np.arange(groups), asks)
        extra = _versions(puzzles, solutions, group, np.zeros(len(group), bool), box, rng)
        every = {key: np.concatenate([every[key], extra[key]]) for key in every}
        drawn += asks
        keep = _first_occurrences(every["hash"])
    # kept rows in (group, draw order) - the identity stays first - at most `versions` each
    rows = np.flatnonzero(keep)
    rows = rows[np.argsort(every["group"][rows], kind="stable")]
    counts = np.bincount(every["group"][rows], minlength=groups)
    rank = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = rows[rank < versions]
    selected = {key: value[rows] for key, value in every.items() if key != "hash"}
    selected["versions"] = np.minimum(counts, versions)
    return selected


class GroupWriter:
    """Augments whole groups (original + versions-1 shuffles) and appends them to a split.

    Batches are bounded (`_ROWS_PER_APPEND` examples). The append - mostly zstd compression
    inside zarr - runs on one background thread while the next batch is augmented (the numba
    kernels release the GIL), with at most one batch in flight. Leaving the `with` block waits
    for that append even on Ctrl-C, so nothing writes into the output directory afterwards."""

    def __init__(self, split: SplitWriter, versions: int, box: int, rng: np.random.Generator,
                 summary: SplitSummary):
        self.split, self.versions, self.box, self.rng, self.summary = split, versions, box, rng, summary
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sudoku-append")
        self._pending: Future | None = None

    def __enter__(self) -> "GroupWriter":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._pool.shutdown(wait=True)  # let an append in flight finish, error or not
        if exc_info[0] is None and self._pending is not None:
            self._pending.result()  # re-raise an error of the last append

    def write(self, puzzles: np.ndarray, solutions: np.ndarray, group_fields: dict[str, np.ndarray]) -> None:
        per_batch = max(1, _ROWS_PER_APPEND // self.versions)
        for start in range(0, len(puzzles), per_batch):
            stop = min(len(puzzles), start + per_batch)
            chosen = _draw_versions(puzzles[start:stop], solutions[start:stop], self.versions, self.box,
                                    self.rng)
            fields = {name: values[start:stop] for name, values in group_fields.items()}
            if self._pending is not None:
                self._pending.result()
            self._pending = self._pool.submit(self._append, chosen, fields)

    def _append(self, chosen: dict[str, np.ndarray], group_fields: dict[str, np.ndarray]) -> None:
        counts = chosen["versions"]
        self.split.set("all").append(
            chosen["inputs"], chosen["labels"], examples_per_puzzle=np.ones(counts.sum(), np.int64),
            puzzles_per_group=counts,
            puzzle_fields={f"aug_{key}": chosen[key] for key in ("transpose", "row_perm", "col_perm",
                                                                 "digit_map")},
            group_fields=group_fields)
        self.summary.groups += len(counts)
        self.summary.puzzles += int(counts.sum())
        self.summary.examples += int(counts.sum())
        self.summary.short_groups += int((counts < self.versions).sum())


def _log_ratings(name: str, summary: SplitSummary) -> None:
    info = summary.as_dict()
    log(f"{name}: {info['groups']} puzzles, rating mean {info['rating_mean']}, median "
        f"{info['rating_median']} (min {info['rating_min']}, max {info['rating_max']}); histogram:")
    rows = info["rating_histogram"]
    last = max((i for i, row in enumerate(rows) if row["count"]), default=0)
    for row in rows[:last + 1]:
        span = f"{row['from']}-{row['to']}" if row["to"] is not None else f">= {row['from']}"
        log(f"  {span:>9} {row['count']:>7}")
    box = summary.box
    alike = "equal up to symmetry" if box == 2 else "identical"
    if info["repeated_puzzles"]:
        share = info["repeated_puzzles"] / max(info["groups"], 1)
        log(f"{name}: {info['repeated_puzzles']} of {info['groups']} puzzles ({share:.0%}) repeat an earlier "
            f"{name} puzzle ({alike})")
    if name != "train" and info["puzzles_also_in_train"]:
        log(f"{name}: {info['puzzles_also_in_train']} puzzles are also train puzzles ({alike})")
    if summary.short_groups:
        log(f"{name}: {summary.short_groups} puzzles have fewer distinct versions than asked "
            "(all that exist, or all found within the retry bound)")


def build_sudoku(out: str | os.PathLike, *, train_size: int = 1000, test_size: int = 1000,
                 min_difficulty: int = 0, aug: int = 1000, test_aug: int = 0, box: int = 3,
                 seed: int = 0, from_csv: str | os.PathLike | None = None,
                 skip_invalid: bool = False, force: bool = False,
                 search_steps: int = DEFAULT_SEARCH_STEPS,
                 easy_fraction: float = DEFAULT_EASY_FRACTION, blanks: int = 0) -> dict[str, Any]:
    """Build a sudoku dataset at `out`; returns a JSON-ready summary (also logged on stderr)."""
    if box not in (2, 3):
        raise UsageError(f"--box must be 2 (4x4) or 3 (9x9), got {box}")
    for name, value in (("--train-size", train_size), ("--test-size", test_size)):
        if value < 1:
            raise UsageError(f"{name} must be at least 1, got {value}")
    for name, value in (("--aug", aug), ("--test-aug", test_aug), ("--min-difficulty", min_difficulty),
                        ("--seed", seed)):
        if value < 0:
            raise UsageError(f"{name} must be >= 0, got {value}")
    csv_dir = Path(from_csv) if from_csv is not None else None
    if blanks:
        if not 1 <= blanks <= max_blanks(box):
            raise UsageError(f"--blanks must be between 1 and {max_blanks(box)} for a unique "
                           f"{box * box}x{box * box} sudoku, got {blanks}")
        for name, clash in (("--from-csv", csv_dir is not None), ("--min-difficulty", min_difficulty > 0)):
            if clash:
                raise UsageError(f"--blanks cannot be combined with {name} (it sets how puzzles are generated)")
    if csv_dir is not None:
        for name in ("train.csv", "test.csv"):
            if not (csv_dir / name).is_file():
                raise HrmError(f"--from-csv {csv_dir}: {name} not found (expected {csv_dir}/train.csv "
                               "and test.csv in the reference layout)")
    n = box * box
    started = time.perf_counter()
    builder_args = {"train_size": train_size, "test_size": test_size, "min_difficulty": min_difficulty,
                    "aug": aug, "test_aug": test_aug, "box": box, "seed": seed,
                    "from_csv": str(csv_dir) if csv_dir else None, "skip_invalid": skip_invalid,
                    "search_steps": search_steps, "easy_fraction": easy_fraction, "blanks": blanks}
    summaries: dict[str, SplitSummary] = {}
    with atomic_directory(out, force=force) as tmp:
        writer = DatasetWriter(tmp, task="sudoku", seed=seed, builder=builder_args,
                               compression_level=_ZSTD_LEVEL)
        for name, size, versions in (("train", train_size, aug + 1), ("test", test_size, test_aug + 1)):
            tag = _SPLIT_TAGS[name]
            summary = summaries[name] = SplitSummary(box=box)
            split = writer.split(name, seq_len=n * n, vocab_size=n + 2, box=box)
            augment_rng = np.random.default_rng([seed, tag, 2])
            with GroupWriter(split, versions, box, augment_rng, summary) as group_writer:
                if csv_dir is not None:
                    imported = import_csv(csv_dir / f"{name}.csv", box=box, size=size, skip_invalid=skip_invalid,
                                          rng=np.random.default_rng([seed, tag, 3]), min_difficulty=min_difficulty)
                    summary.skipped_rows = len(imported.skipped)
                    summary.ratings.append(imported.ratings)
                    bar = progress(total=len(imported.puzzles), desc=f"{name} (import)", unit="puzzle")
                    summary.originals.update(puzzle_keys(imported.puzzles, box))
                    group_writer.write(imported.puzzles, imported.solutions,
                                       {"rating": imported.ratings.astype(np.int32),
                                        "source_rating": imported.source_ratings.astype(np.int32)})
                    bar.update(len(imported.puzzles))
                else:
                    bar = progress(total=size, desc=f"{name} (generate)", unit="puzzle")
                    exclude = summaries["train"].originals if name == "test" else None
                    for puzzles, solutions, ratings in generate_puzzles(
                            size, box=box, seed=seed, split=name, search_steps=search_steps,
                            easy_fraction=easy_fraction, min_difficulty=min_difficulty, blanks=blanks,
                            exclude=exclude, distinct=name == "test"):
                        summary.ratings.append(ratings)
                        summary.originals.update(puzzle_keys(puzzles, box))
                        group_writer.write(puzzles, solutions, {"rating": ratings.astype(np.int32)})
                        bar.update(len(puzzles))
                bar.close()
            if name == "test":
                summary.in_train = len(summary.originals & summaries["train"].originals)
            _log_ratings(name, summary)
        with deferred_interrupt():
            writer.close()
    return {"out": str(out), "task": "sudoku", "box": box, "seed": seed,
            "seconds": round(time.perf_counter() - started, 3),
            "splits": {name: s.as_dict() for name, s in summaries.items()}}
