"""Sudoku-Extreme builder (SPEC 3.1): generate (or import) hard puzzles, augment, write.

Generation: for every puzzle a random solved grid, a minimal unique puzzle by clue removal,
then a hill-climbing search for hardness (see `builders.sudoku_kernels.generate_one`), all in
numba and in parallel over puzzles. Puzzle i of a split uses its own random stream derived
from (seed, split, i), so the output does not depend on thread scheduling or batch sizes.
A minority (`easy_fraction`) gets no hardness search, as the reference mixes easy puzzles with
hard ones; `--min-difficulty` makes every puzzle climb until it reaches the rating.

Augmentation: each group is the original puzzle (identity descriptors) followed by `aug`
random versions (`augment.sudoku`). A version equal to one already kept for that puzzle
(same input and label, found by a 64-bit hash) is redrawn, up to `_MAX_DRAWS_PER_VERSION`
draws per wanted version; a 4x4 puzzle has at most 4!*2*8*8 = 3072 versions, so large `aug`
caps at what exists and the build reports the groups that came out short.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numba
import numpy as np

from augment.sudoku import augment_pairs, identity_transforms, random_transforms
from builders.common import HrmError, log, progress
from builders.dataset import DatasetWriter, SplitWriter, atomic_directory
from builders.sudoku_kernels import generate_batch, sudoku_tables

DEFAULT_SEARCH_STEPS = 90  # hill-climbing proposals per hard puzzle (mean rating ~30 on 9x9)
DEFAULT_EASY_FRACTION = 0.1  # puzzles left as random minimal puzzles (rating ~2)
_MAX_DRAWS_PER_VERSION = 5  # dedup retry bound, as the reference's 5 x K for ARC
_GENERATE_CHUNK = 128  # puzzles per parallel kernel call (progress granularity)
_ROWS_PER_APPEND = 1 << 16  # examples augmented and written per step (bounded memory)
_SPLIT_TAGS = {"train": 0, "test": 1}
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

    def as_dict(self) -> dict[str, Any]:
        ratings = np.concatenate(self.ratings) if self.ratings else np.zeros(0, np.int64)
        return {"groups": self.groups, "puzzles": self.puzzles, "examples": self.examples,
                "rating_mean": round(float(ratings.mean()), 3) if len(ratings) else None,
                "rating_min": int(ratings.min()) if len(ratings) else None,
                "rating_max": int(ratings.max()) if len(ratings) else None,
                "rating_median": float(np.median(ratings)) if len(ratings) else None,
                "rating_histogram": rating_histogram(ratings), "short_groups": self.short_groups,
                "skipped_rows": self.skipped_rows}


def generate_puzzles(count: int, *, box: int = 3, seed: int = 0, split: str = "train",
                     search_steps: int = DEFAULT_SEARCH_STEPS,
                     easy_fraction: float = DEFAULT_EASY_FRACTION, min_difficulty: int = 0,
                     chunk: int = _GENERATE_CHUNK) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (puzzles int8[B, N], solutions int8[B, N], ratings int64[B]) chunk by chunk.

    Every puzzle is unique, minimal and rated; puzzle i depends only on (seed, split, i)."""
    n = box * box
    peers, units = sudoku_tables(box)
    tag = _SPLIT_TAGS[split]
    seeds = np.random.SeedSequence([seed, tag]).generate_state(count, np.uint64)
    easy_draw = np.random.SeedSequence([seed, tag, 1]).generate_state(count, np.uint64)
    steps = np.where(easy_draw < np.uint64(easy_fraction * 2.0**64), 0, search_steps).astype(np.int64)
    # Past the budget, a puzzle under --min-difficulty keeps climbing up to this many proposals.
    max_steps = max(10 * search_steps, 1000) if min_difficulty > 0 else 0
    for start in range(0, count, chunk):
        stop = min(count, start + chunk)
        # chunk size 1: threads take puzzles one by one (their cost varies ~10x)
        with numba.parallel_chunksize(1):
            puzzles, solutions, ratings, _ = generate_batch(seeds[start:stop], steps[start:stop], peers,
                                                            units, n, min_difficulty, max_steps)
        if (ratings < min_difficulty).any():
            best = int(ratings[ratings < min_difficulty].max())
            raise HrmError(f"could not reach --min-difficulty {min_difficulty} within {max_steps} "
                           f"search steps (a puzzle stopped at {best}); choose a lower difficulty")
        yield puzzles, solutions, ratings


def _draw_versions(puzzles: np.ndarray, solutions: np.ndarray, versions: int, box: int,
                   rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Up to `versions` distinct versions per original (the identity first), in draw order.

    Candidates are drawn in rounds; after each round, duplicates (same group and hash) are
    dropped keeping the earliest draw, and groups still short draw again until the bound."""
    groups = len(puzzles)
    parts: list[dict[str, np.ndarray]] = []

    def draw(group: np.ndarray, descriptors: tuple[np.ndarray, ...]) -> None:
        transpose, row_perm, col_perm, digit_map = descriptors
        inputs, labels, hashes = augment_pairs(puzzles, solutions, group, transpose, row_perm,
                                               col_perm, digit_map)
        parts.append({"group": group, "transpose": transpose, "row_perm": row_perm,
                      "col_perm": col_perm, "digit_map": digit_map, "inputs": inputs,
                      "labels": labels, "hash": hashes})

    draw(np.arange(groups), identity_transforms(groups, box))
    drawn = np.ones(groups, np.int64)
    limit = 1 + _MAX_DRAWS_PER_VERSION * (versions - 1)
    need = np.full(groups, versions - 1)
    keep = np.ones(groups, bool)
    while True:
        # first round: exactly what is missing (9x9 versions practically never collide);
        # later rounds: twice the deficit, since collisions mean few distinct versions remain
        wanted = need if len(parts) == 1 else 2 * need + 4
        asks = np.minimum(np.where(need > 0, wanted, 0), limit - drawn)
        if not asks.any():
            break
        group = np.repeat(np.arange(groups), asks)
        draw(group, random_transforms(rng, len(group), box))
        drawn += asks
        keep = _first_occurrences(np.concatenate([p["group"] for p in parts]),
                                  np.concatenate([p["hash"] for p in parts]))
        kept_per_group = np.bincount(np.concatenate([p["group"] for p in parts])[keep], minlength=groups)
        need = versions - kept_per_group
    every = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    # kept rows in (group, draw order); at most `versions` per group
    rows = np.flatnonzero(keep)
    rows = rows[np.argsort(every["group"][rows], kind="stable")]
    counts = np.bincount(every["group"][rows], minlength=groups)
    rank = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = rows[rank < versions]
    selected = {key: value[rows] for key, value in every.items() if key != "hash"}
    selected["versions"] = np.minimum(counts, versions)
    return selected


def _first_occurrences(group: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """bool mask: row is the first (lowest index) with its (group, hash)."""
    order = np.lexsort((np.arange(len(group)), hashes, group))
    same = (group[order][1:] == group[order][:-1]) & (hashes[order][1:] == hashes[order][:-1])
    keep = np.ones(len(group), bool)
    keep[order[1:][same]] = False
    return keep


def write_groups(split: SplitWriter, puzzles: np.ndarray, solutions: np.ndarray, versions: int,
                 box: int, rng: np.random.Generator, summary: SplitSummary,
                 group_fields: dict[str, np.ndarray]) -> None:
    """Augment and append whole groups (original + versions-1 shuffles), bounded batch by batch."""
    per_batch = max(1, _ROWS_PER_APPEND // versions)
    for start in range(0, len(puzzles), per_batch):
        stop = min(len(puzzles), start + per_batch)
        chosen = _draw_versions(puzzles[start:stop], solutions[start:stop], versions, box, rng)
        counts = chosen["versions"]
        split.set("all").append(
            chosen["inputs"], chosen["labels"], examples_per_puzzle=np.ones(counts.sum(), np.int64),
            puzzles_per_group=counts,
            puzzle_fields={f"aug_{key}": chosen[key] for key in ("transpose", "row_perm", "col_perm",
                                                                 "digit_map")},
            group_fields={name: values[start:stop] for name, values in group_fields.items()})
        summary.groups += stop - start
        summary.puzzles += int(counts.sum())
        summary.examples += int(counts.sum())
        summary.short_groups += int((counts < versions).sum())


def _log_ratings(name: str, summary: SplitSummary) -> None:
    info = summary.as_dict()
    log(f"{name}: {info['groups']} puzzles, rating mean {info['rating_mean']}, median "
        f"{info['rating_median']} (min {info['rating_min']}, max {info['rating_max']}); histogram:")
    for row in info["rating_histogram"]:
        span = f"{row['from']}-{row['to']}" if row["to"] is not None else f">= {row['from']}"
        log(f"  {span:>9} {row['count']:>7}")
    if summary.short_groups:
        log(f"{name}: {summary.short_groups} puzzles have fewer distinct versions than asked "
            "(all that exist, or all found within the retry bound)")


def build_sudoku(out: str | os.PathLike, *, train_size: int = 1000, test_size: int = 1000,
                 min_difficulty: int = 0, aug: int = 1000, test_aug: int = 0, box: int = 3,
                 seed: int = 0, from_csv: str | os.PathLike | None = None,
                 skip_invalid: bool = False, force: bool = False,
                 search_steps: int = DEFAULT_SEARCH_STEPS,
                 easy_fraction: float = DEFAULT_EASY_FRACTION) -> dict[str, Any]:
    """Build a sudoku dataset at `out`; returns a JSON-ready summary (also logged on stderr)."""
    if box not in (2, 3):
        raise HrmError(f"--box must be 2 (4x4) or 3 (9x9), got {box}")
    for name, value in (("--train-size", train_size), ("--test-size", test_size)):
        if value < 1:
            raise HrmError(f"{name} must be at least 1, got {value}")
    for name, value in (("--aug", aug), ("--test-aug", test_aug), ("--min-difficulty", min_difficulty),
                        ("--seed", seed)):
        if value < 0:
            raise HrmError(f"{name} must be >= 0, got {value}")
    csv_dir = Path(from_csv) if from_csv is not None else None
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
                    "search_steps": search_steps, "easy_fraction": easy_fraction}
    summaries: dict[str, SplitSummary] = {}
    with atomic_directory(out, force=force) as tmp:
        writer = DatasetWriter(tmp, task="sudoku", seed=seed, builder=builder_args)
        for name, size, versions in (("train", train_size, aug + 1), ("test", test_size, test_aug + 1)):
            tag = _SPLIT_TAGS[name]
            summary = summaries[name] = SplitSummary()
            split = writer.split(name, seq_len=n * n, vocab_size=n + 2, box=box)
            augment_rng = np.random.default_rng([seed, tag, 2])
            if csv_dir is not None:
                from builders.sudoku_import import import_csv

                imported = import_csv(csv_dir / f"{name}.csv", box=box, size=size, skip_invalid=skip_invalid,
                                      rng=np.random.default_rng([seed, tag, 3]), min_difficulty=min_difficulty)
                summary.skipped_rows = len(imported.skipped)
                summary.ratings.append(imported.ratings)
                fields = {"rating": imported.ratings.astype(np.int32),
                          "source_rating": imported.source_ratings.astype(np.int32)}
                bar = progress(total=len(imported.puzzles), desc=f"{name} (import)", unit="puzzle")
                write_groups(split, imported.puzzles, imported.solutions, versions, box, augment_rng,
                             summary, fields)
                bar.update(len(imported.puzzles))
                bar.close()
            else:
                bar = progress(total=size, desc=f"{name} (generate)", unit="puzzle")
                for puzzles, solutions, ratings in generate_puzzles(
                        size, box=box, seed=seed, split=name, search_steps=search_steps,
                        easy_fraction=easy_fraction, min_difficulty=min_difficulty):
                    summary.ratings.append(ratings)
                    write_groups(split, puzzles, solutions, versions, box, augment_rng, summary,
                                 {"rating": ratings.astype(np.int32)})
                    bar.update(len(puzzles))
                bar.close()
            _log_ratings(name, summary)
        writer.close()
    return {"out": str(out), "task": "sudoku", "box": box, "seed": seed,
            "seconds": round(time.perf_counter() - started, 3),
            "splits": {name: s.as_dict() for name, s in summaries.items()}}
