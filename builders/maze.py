"""Maze-Hard builder (SPEC 3.2): generated random-wall mazes or the reference CSV, written in the
hrm dataset format with optional dihedral augmentation.

Tokens follow the reference charset "# SGo": wall 1, open 2, S 3, G 4, path 5 (labels only),
pad 0. The label is the input with the inner cells of one shortest S->G path marked `o`
(S and G keep their letters, as in the reference Maze-Hard CSV). Path length = moves from S to
G (the BFS distance); the path covers length + 1 cells. A group is one maze and its dihedral
versions; puzzle field `aug_dihedral`, group fields `path_length` and `num_shortest_paths`
(saturating at `COUNT_CAP`).
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from hrm.augment import maze_paths
from hrm.augment.dihedral import NUM_DIHEDRAL, dihedral
from hrm.augment.random_stream import mix64
from hrm.builders import maze_kernels as kernels
from hrm.common import HrmError, UsageError, deferred_interrupt, log, progress
from hrm.builders.dataset import DatasetWriter, SetWriter, atomic_directory
from hrm.builders.inspect import histogram, histogram_lines
from hrm.builders.reference_csv import ReferenceCsv, read_reference_csv

CHARSET = "# SGo"
VOCAB_SIZE = len(CHARSET) + 1
DEFAULT_SIZE = 30
DEFAULT_COUNT = 1000
DEFAULT_MIN_PATH = 110
DEFAULT_WALL_DENSITY = 0.25
COUNT_CAP = maze_paths.COUNT_CAP
MAX_SIZE = 256

_TOKEN_OF_CHAR = np.zeros(256, np.uint8)
_TOKEN_OF_CHAR[[ord(c) for c in CHARSET]] = np.arange(1, len(CHARSET) + 1)
_FIRST_BATCH = 64
_MAX_BATCH = 4096


@dataclass
class Mazes:
    """Original (unaugmented) mazes: tokens [n, size*size] and per-maze statistics."""

    inputs: np.ndarray
    labels: np.ndarray
    path_lengths: np.ndarray  # int32 [n], moves from S to G
    num_shortest_paths: np.ndarray  # int32 [n], capped at COUNT_CAP

    def __len__(self) -> int:
        return len(self.inputs)

    def take(self, rows: np.ndarray | slice) -> "Mazes":
        return Mazes(self.inputs[rows], self.labels[rows], self.path_lengths[rows],
                     self.num_shortest_paths[rows])


# ----------------------------------------------------------------------------- generation


def stream_base(seed: int, stream: int) -> np.uint64:
    """Base of the random stream of one split (train 0, test 1) for `seed`."""
    # np.uint64 throughout: numba hands uint64 back as a Python int, which would type as int64
    first = np.uint64(mix64(np.uint64(seed & (2**64 - 1))))
    return np.uint64(mix64(first + np.uint64(stream)))


def dihedral_versions(tokens: np.ndarray, side: int, ids: list[int] | range) -> np.ndarray:
    """[n, side*side] -> [n, len(ids), side*side]: transform `ids` of every grid."""
    grids = np.moveaxis(tokens.reshape(-1, side, side), 0, -1)  # dihedral acts on the first two axes
    return np.stack([np.moveaxis(dihedral(grids, t), -1, 0).reshape(len(tokens), side * side) for t in ids],
                    axis=1)


def canonical_digests(inputs: np.ndarray, side: int) -> list[bytes]:
    """One digest per maze, equal for mazes that are dihedral versions of each other."""
    versions = dihedral_versions(inputs, side, range(NUM_DIHEDRAL))
    return [min(hashlib.blake2b(v.tobytes(), digest_size=16).digest() for v in row) for row in versions]


def generate_mazes(count: int, *, size: int, min_path: int, seed: int, stream: int,
                   unique_path: bool = False, wall_density: float = DEFAULT_WALL_DENSITY,
                   seen: set[bytes] | None = None) -> Iterator[Mazes]:
    """Yield batches of `count` new mazes in total. Candidate i of the stream depends only on
    (seed, stream, i); candidates are accepted in index order, skipping failures and mazes
    already in `seen` (updated) up to a dihedral transform, so the result does not depend on
    the batch sizes or the number of threads."""
    seen = set() if seen is None else seen
    base = stream_base(seed, stream)
    cells = size * size
    produced = tried = 0
    batch = _FIRST_BATCH
    while produced < count:
        inputs = np.empty((batch, cells), np.uint8)
        labels = np.empty((batch, cells), np.uint8)
        lengths = np.empty(batch, np.int32)
        counts = np.empty(batch, np.int32)
        with deferred_interrupt():
            kernels.generate_batch(base, tried, size, min_path, wall_density, unique_path,
                                   inputs, labels, lengths, counts)
        tried += batch
        keep = []
        for row, digest in zip(np.flatnonzero(lengths >= 0), canonical_digests(inputs[lengths >= 0], size)):
            if produced + len(keep) == count:
                break
            if digest not in seen:
                seen.add(digest)
                keep.append(row)
        produced += len(keep)
        if produced < count and (produced == 0 or produced < tried / 100):
            raise HrmError(f"could not generate {count} distinct {size}x{size} mazes with a shortest path of "
                           f"at least {min_path} moves: {produced} of {tried} tries succeeded; "
                           "lower --min-path or the number of mazes")
        if keep:
            yield Mazes(inputs[keep], labels[keep], lengths[keep], counts[keep])
        rate = produced / tried
        batch = int(np.clip((count - produced) / max(rate, 0.01) * 1.05 + 16, _FIRST_BATCH, _MAX_BATCH))


# ----------------------------------------------------------------------------- CSV import


def _cell(index: int, side: int) -> str:
    return f"row {index // side + 1}, column {index % side + 1}"


def _reject_chars(csv: ReferenceCsv, column: str, allowed: str, skip_invalid: bool) -> ReferenceCsv:
    codes = csv.questions if column == "question" else csv.answers
    bad_cells = ~np.isin(codes, np.frombuffer(allowed.encode(), np.uint8))
    bad = bad_cells.any(axis=1)
    reasons = [f"{column} has character {chr(codes[r, c])!r} (allowed: {', '.join(map(repr, allowed))})"
               for r, c in zip(np.flatnonzero(bad), bad_cells[bad].argmax(axis=1))]
    return csv.reject(bad, reasons, skip_invalid)


def validate_csv(csv: ReferenceCsv, side: int, skip_invalid: bool) -> tuple[ReferenceCsv, Mazes]:
    """Check every row (one S, one G, answer = question + `o` on open cells, the `o` cells a
    shortest S->G path) and tokenise the valid ones. Errors name the line."""
    csv = _reject_chars(csv, "question", "# SG", skip_invalid)
    csv = _reject_chars(csv, "answer", CHARSET, skip_invalid)
    for letter in "SG":
        found = (csv.questions == ord(letter)).sum(axis=1)
        csv = csv.reject(found != 1, [f"question has {n} {letter} cells, expected one" for n in found[found != 1]],
                         skip_invalid)
    q, a = csv.questions, csv.answers
    walls_changed = (q == ord("#")) != (a == ord("#"))
    bad = walls_changed.any(axis=1)
    csv = csv.reject(bad, [f"answer changes the walls (first at {_cell(i, side)})"
                           for i in walls_changed[bad].argmax(axis=1)], skip_invalid)
    q, a = csv.questions, csv.answers
    changed = (q != a) & ~((a == ord("o")) & (q == ord(" ")))
    bad = changed.any(axis=1)
    reasons = []
    for row, i in zip(np.flatnonzero(bad), changed[bad].argmax(axis=1)):
        reasons.append(f"answer changes {_cell(i, side)} from {chr(q[row, i])!r} to {chr(a[row, i])!r} "
                       "(only open cells may become 'o')")
    csv = csv.reject(bad, reasons, skip_invalid)
    inputs, labels = _TOKEN_OF_CHAR[csv.questions], _TOKEN_OF_CHAR[csv.answers]
    n = len(csv)
    codes, lengths, marked = np.empty(n, np.int32), np.empty(n, np.int32), np.empty(n, np.int32)
    counts = np.empty(n, np.int32)
    with deferred_interrupt():
        maze_paths.check_solutions(side, inputs, labels, codes, lengths, marked, counts)
    messages = {maze_paths.CHECK_UNREACHABLE: "G is not reachable from S",
                maze_paths.CHECK_PATH_BROKEN: "the cells marked 'o' do not connect S to G",
                maze_paths.CHECK_PATH_LONGER: "the marked path is not a shortest path ({m} moves marked, shortest is {s})"}
    bad = codes != maze_paths.CHECK_OK
    reasons = [messages[c].format(m=m, s=s) for c, m, s in zip(codes[bad], marked[bad], lengths[bad])]
    csv = csv.reject(bad, reasons, skip_invalid)
    return csv, Mazes(inputs[~bad], labels[~bad], lengths[~bad], counts[~bad])


def load_csv_split(path: Path, *, size: int, limit: int | None, min_path: int | None,
                   unique_path: bool, skip_invalid: bool) -> Mazes:
    csv, mazes = validate_csv(read_reference_csv(path, size * size, skip_invalid=skip_invalid), size,
                              skip_invalid)
    if min_path is not None:
        short = mazes.path_lengths < min_path
        if short.any():
            log(f"{path}: dropped {int(short.sum())} mazes with a shortest path under {min_path} moves")
        mazes = mazes.take(~short)
    if unique_path:
        ambiguous = mazes.num_shortest_paths != 1
        if ambiguous.any():
            log(f"{path}: dropped {int(ambiguous.sum())} mazes with more than one shortest path")
        mazes = mazes.take(~ambiguous)
    return mazes if limit is None else mazes.take(slice(0, limit))


# ----------------------------------------------------------------------------- writing


def draw_dihedral_ids(count: int, versions: int, rng: np.random.Generator) -> np.ndarray:
    """[count, 1 + versions] dihedral ids per maze: 0 (the maze itself), then `versions` of the 7
    others, drawn without replacement and sorted. Drawn maze by maze from one generator per split,
    so the choice does not depend on how the mazes are batched."""
    ids = np.zeros((count, 1 + versions), np.int64)
    for row in range(count):
        ids[row, 1:] = np.sort(rng.permutation(NUM_DIHEDRAL - 1)[:versions] + 1)
    return ids


def append_groups(writer: SetWriter, mazes: Mazes, size: int, versions: int,
                  rng: np.random.Generator | None = None) -> int:
    """Write each maze as one group: the maze, plus `versions` (0-7) of its 7 other dihedral
    versions, drawn with `rng` when fewer than all 7 (a version whose input equals an earlier one
    of the same maze is left out). Returns the number of examples written."""
    if len(mazes) == 0:
        return 0
    if versions >= NUM_DIHEDRAL - 1 or versions == 0:
        ids = np.broadcast_to(np.arange(1 + versions), (len(mazes), 1 + versions))
    else:
        ids = draw_dihedral_ids(len(mazes), versions, rng if rng is not None else np.random.default_rng(0))
    used = sorted(set(ids.reshape(-1).tolist()))
    position = np.full(NUM_DIHEDRAL, -1, np.int64)
    position[used] = np.arange(len(used))
    rows = np.arange(len(mazes))[:, None]
    inputs = dihedral_versions(mazes.inputs, size, used)[rows, position[ids]]
    labels = dihedral_versions(mazes.labels, size, used)[rows, position[ids]]
    keep = np.ones(inputs.shape[:2], bool)
    for t in range(1, ids.shape[1]):
        for earlier in range(t):
            keep[:, t] &= ~(inputs[:, t] == inputs[:, earlier]).all(axis=1)
    kept = int(keep.sum())
    writer.append(inputs[keep], labels[keep], examples_per_puzzle=np.ones(kept, np.int64),
                  puzzles_per_group=keep.sum(axis=1),
                  puzzle_fields={"aug_dihedral": np.asarray(ids, np.uint8)[keep]},
                  group_fields={"path_length": mazes.path_lengths.astype(np.int32),
                                "num_shortest_paths": mazes.num_shortest_paths.astype(np.int32)})
    return kept


def _split_stats(lengths: np.ndarray, counts: np.ndarray, examples: int) -> dict[str, Any]:
    stats: dict[str, Any] = {"mazes": len(lengths), "examples": examples}
    if len(lengths):
        stats["path_length"] = {"min": int(lengths.min()), "mean": float(lengths.mean()),
                                "max": int(lengths.max()), "histogram": histogram(lengths)}
        stats["num_shortest_paths"] = {"min": int(counts.min()), "median": float(np.median(counts)),
                                       "max": int(counts.max()), "unique_fraction": float(np.mean(counts == 1))}
    return stats


def _log_histogram(split: str, stats: dict[str, Any]) -> None:
    log(f"{split}: path lengths (moves S->G) of {stats['mazes']} mazes")
    for line in histogram_lines(stats.get("path_length", {}).get("histogram", []), indent="  "):
        log(line)


def _check_args(size: int, counts: list[int | None], min_path: int | None, wall_density: float,
                augs: tuple[int, int] = (0, 0)) -> None:
    for name, value in zip(("--aug", "--test-aug"), augs):
        if isinstance(value, bool) or not 0 <= value <= NUM_DIHEDRAL - 1:
            raise UsageError(f"{name} takes a count of the 7 other dihedral versions per maze, 0-7; got {value}")
    if not 2 <= size <= MAX_SIZE:
        raise UsageError(f"--size must be between 2 and {MAX_SIZE}, got {size}")
    if any(c is not None and c < 0 for c in counts):
        raise UsageError("--train-size and --test-size must not be negative")
    if min_path is not None and not 1 <= min_path < size * size:
        raise UsageError(f"--min-path must be between 1 and {size * size - 1} for a {size}x{size} maze, got {min_path}")
    if not 0.0 <= wall_density < 1.0:
        raise HrmError(f"wall density must be in [0, 1), got {wall_density}")


def build_maze(out: str | os.PathLike, *, size: int = DEFAULT_SIZE, train_size: int | None = None,
               test_size: int | None = None, min_path: int | None = None, aug: int = 0,
               test_aug: int = 0, unique_path: bool = False, seed: int = 0,
               from_csv: str | os.PathLike | None = None, skip_invalid: bool = False, force: bool = False,
               wall_density: float = DEFAULT_WALL_DENSITY) -> dict[str, Any]:
    """Build a Maze-Hard dataset at `out`; returns a JSON-ready summary.

    Generated (default): `train_size`/`test_size` mazes (default 1000 each) with a shortest
    path of at least `min_path` moves (default 110). With `from_csv` (a directory holding
    train.csv and test.csv): every valid row, or the first `train_size`/`test_size`;
    `min_path` and `unique_path` then filter rather than generate. `aug` / `test_aug`: K of the 7
    other dihedral versions of every train / test maze (seeded; 7 = all, 8 puzzles per group)."""
    _check_args(size, [train_size, test_size], min_path, wall_density, (aug, test_aug))
    csv_dir = Path(from_csv) if from_csv is not None else None
    if csv_dir is not None and not csv_dir.is_dir():
        raise HrmError(f"--from-csv {csv_dir} is not a directory (expected train.csv and test.csv in it)")
    builder_args = {"size": size, "train_size": train_size, "test_size": test_size, "min_path": min_path,
                    "aug": aug, "test_aug": test_aug, "unique_path": unique_path, "seed": seed,
                    "from_csv": str(csv_dir) if csv_dir else None, "skip_invalid": skip_invalid,
                    "wall_density": None if csv_dir else wall_density}
    started = time.perf_counter()
    summary: dict[str, Any] = {"out": str(out), "task": "maze", "size": size,
                               "source": str(csv_dir) if csv_dir else "generated", "splits": {}}
    seen: set[bytes] = set()  # canonical digests: no maze (or rotation of one) appears twice
    with atomic_directory(out, force=force) as tmp:
        writer = DatasetWriter(tmp, task="maze", seed=seed, builder=builder_args)
        for stream, (split, count, augment) in enumerate([("train", train_size, aug), ("test", test_size, test_aug)]):
            set_writer = writer.split(split, seq_len=size * size, vocab_size=VOCAB_SIZE).set("all")
            if csv_dir is not None:
                batches: Iterator[Mazes] | list[Mazes] = [load_csv_split(
                    csv_dir / f"{split}.csv", size=size, limit=count, min_path=min_path,
                    unique_path=unique_path, skip_invalid=skip_invalid)]
                total = len(batches[0])
            else:
                total = DEFAULT_COUNT if count is None else count
                batches = generate_mazes(total, size=size, stream=stream, seed=seed, unique_path=unique_path,
                                         min_path=DEFAULT_MIN_PATH if min_path is None else min_path,
                                         wall_density=wall_density, seen=seen)
            lengths, counts, examples = [], [], 0
            version_rng = np.random.default_rng([seed, stream, 0xD1])  # which dihedral versions
            with progress(total=total, desc=f"maze {split}", unit="maze") as bar:
                for mazes in batches:
                    examples += append_groups(set_writer, mazes, size, augment, version_rng)
                    lengths.append(mazes.path_lengths)
                    counts.append(mazes.num_shortest_paths)
                    bar.update(len(mazes))
            stats = _split_stats(np.concatenate(lengths or [np.zeros(0, np.int32)]),
                                 np.concatenate(counts or [np.zeros(0, np.int32)]), examples)
            _log_histogram(split, stats)
            summary["splits"][split] = stats
        writer.close(path_length_unit="moves from S to G", num_shortest_paths_cap=COUNT_CAP)
    summary["seconds"] = time.perf_counter() - started
    return summary
