"""The hrm dataset format (SPEC 2): a zarr v3 group of sharded, compressed arrays.

    DIR/                      attrs: format, format_version, task, seed, builder, ...
      identifiers             str [num_puzzle_identifiers]   id 0 = "<blank>"
      <split>/                attrs: seq_len, vocab_size, pad_id, ignore_label_id, ...
        <set>/
          inputs, labels      uint8 [N, seq_len]
          puzzle_identifiers  int32 [P]
          puzzle_indices      int64 [P+1]   examples of puzzle p: rows [pi[p], pi[p+1])
          group_indices       int64 [G+1]   puzzles of group g:  [gi[g], gi[g+1])
          puzzle/<field>      per-puzzle arrays [P, ...]  (augmentation descriptors, ...)
          group/<field>       per-group arrays  [G, ...]  (rating, path length, ...)

Writing streams: every array is appended shard by shard from a bounded buffer, so a builder
never holds the dataset in memory. The output directory is built in a hidden sibling and
renamed into place only when complete (`atomic_directory`). Reading checks the format name and
version, and any row range can be fetched without reading the rest.
"""
from __future__ import annotations

import json
import os
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

# reading a chunk that does not decode raises DatasetDamaged (re-exported: the dataset format is the
# one door of builders/ that train, eval and show use)
from hrm.builders.damage import DatasetDamaged, checked_read  # noqa: F401
from hrm.common import HrmError, outputs
from hrm.common.outputs import OutputKind

FORMAT_NAME = "hrm-dataset"
FORMAT_VERSION = 1
BLANK_IDENTIFIER = "<blank>"

# Bytes per chunk and chunks per shard. Chunks of up to 1 MiB: zarr's per-chunk Python overhead
# dominated writes with 128 KiB chunks (the ARC build ran 1.8x slower), and a random row read
# still decodes at most 1 MiB; shards of 64 chunks keep the file count low.
_CHUNK_BYTES = 1024 * 1024
_CHUNKS_PER_SHARD = 64
_ZSTD_LEVEL = 5


def _rows_per_chunk(row_bytes: int) -> int:
    rows = max(1, _CHUNK_BYTES // max(1, row_bytes))
    return 1 << (rows.bit_length() - 1)  # a power of two, so shards align with batch sizes


class _Appender:
    """Appends rows to a zarr array through a one-shard buffer; writes whole shards only."""

    def __init__(self, group: zarr.Group, name: str, dtype: np.dtype, tail: tuple[int, ...],
                 level: int = _ZSTD_LEVEL):
        self.dtype = np.dtype(dtype) if dtype is not str else None
        self.tail = tail
        row_bytes = int(np.prod(tail, dtype=np.int64)) * (self.dtype.itemsize if self.dtype else 16)
        chunk_rows = _rows_per_chunk(row_bytes)
        self.shard_rows = chunk_rows * _CHUNKS_PER_SHARD
        self.array = group.create_array(
            name, shape=(0, *tail), dtype=dtype if self.dtype is None else self.dtype,
            chunks=(chunk_rows, *tail), shards=(self.shard_rows, *tail),
            # a CRC32C per chunk (4 bytes) names damage as such when reading (`DatasetDamaged`);
            # datasets written before it read as they are: the codecs are in each array's metadata
            compressors=(ZstdCodec(level=level), Crc32cCodec()), fill_value=None if self.dtype is None else 0,
            # skip zarr's per-chunk "all fill value?" test: it costs more than writing such chunks
            config={"write_empty_chunks": True},
        )
        self._pending: list[np.ndarray] = []
        self._pending_rows = 0
        self.rows = 0

    def append(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows) if self.dtype is None else np.asarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.tail:
            raise ValueError(f"{self.array.path}: rows of shape {rows.shape[1:]}, expected {self.tail}")
        self._pending.append(rows)
        self._pending_rows += len(rows)
        self.rows += len(rows)
        if self._pending_rows >= self.shard_rows:
            buffered = np.concatenate(self._pending)
            whole = (len(buffered) // self.shard_rows) * self.shard_rows
            self._write(buffered[:whole])
            rest = buffered[whole:]
            self._pending = [rest] if len(rest) else []
            self._pending_rows = len(rest)

    def close(self) -> None:
        if self._pending_rows:
            self._write(np.concatenate(self._pending))
        self._pending, self._pending_rows = [], 0

    def _write(self, rows: np.ndarray) -> None:
        # zarr encodes a shard's chunks one at a time by default (codec_pipeline.batch_size 1);
        # a batch of a whole shard encodes them concurrently with less overhead (~30% less CPU).
        # zarr.config is process-wide: write from one thread at a time (ARC uses one writer thread)
        with zarr.config.set({"codec_pipeline.batch_size": _CHUNKS_PER_SHARD}):
            self.array.append(rows)


def is_dataset_dir(path: Path) -> bool:
    """Whether `path` holds a dataset written by hrm (its zarr.json names our format)."""
    try:
        meta = json.loads((Path(path) / "zarr.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and (meta.get("attributes") or {}).get("format") == FORMAT_NAME


DATASET_OUTPUT = OutputKind("a dataset", directory=True, written_by_hrm=is_dataset_dir)


def atomic_directory(out: str | os.PathLike, *, force: bool = False) -> AbstractContextManager[Path]:
    """Yield a hidden temporary sibling of `out`; rename it to `out` only if the block succeeds.

    An interrupted or failed build leaves no directory that looks complete. An existing `out`
    is refused unless `force`, and even then only an hrm dataset or an empty folder is replaced,
    after the new one is complete (`hrm.common.outputs`).
    """
    return outputs.atomic_directory(out, DATASET_OUTPUT, force=force)


class SetWriter:
    """Streams the puzzles of one set (e.g. train/all) into its arrays."""

    def __init__(self, group: zarr.Group, seq_len: int, level: int = _ZSTD_LEVEL):
        self.group = group
        self.seq_len = seq_len
        self.level = level
        self.inputs = _Appender(group, "inputs", np.uint8, (seq_len,), level)
        self.labels = _Appender(group, "labels", np.uint8, (seq_len,), level)
        self.puzzle_identifiers = _Appender(group, "puzzle_identifiers", np.int32, (), level)
        self.puzzle_indices = _Appender(group, "puzzle_indices", np.int64, (), level)
        self.group_indices = _Appender(group, "group_indices", np.int64, (), level)
        self.puzzle_indices.append(np.zeros(1, np.int64))
        self.group_indices.append(np.zeros(1, np.int64))
        self.puzzle_fields: dict[str, _Appender] | None = None
        self.group_fields: dict[str, _Appender] | None = None
        self.num_examples = self.num_puzzles = self.num_groups = 0
        self._open_puzzles = 0  # puzzles of a group streamed with append_to_group, not yet ended

    def append(self, inputs: np.ndarray, labels: np.ndarray, *, examples_per_puzzle: np.ndarray,
               puzzles_per_group: np.ndarray, puzzle_identifiers: np.ndarray | None = None,
               puzzle_fields: Mapping[str, np.ndarray] | None = None,
               group_fields: Mapping[str, np.ndarray] | None = None) -> None:
        """Append whole groups: `inputs`/`labels` [n, seq_len], `examples_per_puzzle` [p]
        (sums to n), `puzzles_per_group` [g] (sums to p), identifiers [p] (default blank = 0),
        per-puzzle arrays [p, ...] and per-group arrays [g, ...]. Every call must carry the
        same field names."""
        if self._open_puzzles:
            raise ValueError("append() while a group streamed with append_to_group() is still open")
        self._append(inputs, labels, examples_per_puzzle, puzzles_per_group, puzzle_identifiers,
                     puzzle_fields, group_fields, unended=0)

    def append_to_group(self, inputs: np.ndarray, labels: np.ndarray, *, examples_per_puzzle: np.ndarray,
                        last: bool, puzzle_identifiers: np.ndarray | None = None,
                        puzzle_fields: Mapping[str, np.ndarray] | None = None,
                        group_fields: Mapping[str, np.ndarray] | None = None) -> None:
        """Stream one group in pieces, for groups too large to hold in memory (ARC with many
        augmentations): each call appends puzzles to the open group; the call with `last=True`
        ends the group and carries its group fields."""
        pieces = len(examples_per_puzzle)
        self._append(inputs, labels, examples_per_puzzle, [pieces] if last else [], puzzle_identifiers,
                     puzzle_fields, group_fields if last else None, unended=0 if last else pieces)
        # a group's end index is absolute, so the last piece's count closes the whole group
        self._open_puzzles = 0 if last else self._open_puzzles + pieces

    def _append(self, inputs, labels, examples_per_puzzle, puzzles_per_group, puzzle_identifiers,
                puzzle_fields, group_fields, *, unended: int) -> None:
        inputs, labels = np.asarray(inputs), np.asarray(labels)
        examples_per_puzzle = np.asarray(examples_per_puzzle, np.int64)
        puzzles_per_group = np.asarray(puzzles_per_group, np.int64)
        n, p, g = len(inputs), len(examples_per_puzzle), len(puzzles_per_group)
        if labels.shape != inputs.shape or inputs.shape[1:] != (self.seq_len,):
            raise ValueError(f"inputs {inputs.shape} / labels {labels.shape}, seq_len {self.seq_len}")
        if examples_per_puzzle.sum() != n or puzzles_per_group.sum() + unended != p:
            raise ValueError("examples_per_puzzle must sum to the rows, puzzles_per_group to the puzzles")
        if puzzle_identifiers is None:
            puzzle_identifiers = np.zeros(p, np.int32)
        self.puzzle_fields = self._fields(self.puzzle_fields, "puzzle", puzzle_fields or {}, p)
        self.group_fields = self._fields(self.group_fields, "group", group_fields or {}, g)
        self.inputs.append(inputs)
        self.labels.append(labels)
        self.puzzle_identifiers.append(np.asarray(puzzle_identifiers, np.int32))
        self.puzzle_indices.append(self.num_examples + np.cumsum(examples_per_puzzle))
        self.group_indices.append(self.num_puzzles + np.cumsum(puzzles_per_group))
        self.num_examples += n
        self.num_puzzles += p
        self.num_groups += g

    def _fields(self, appenders: dict[str, _Appender] | None, kind: str,
                fields: Mapping[str, np.ndarray], count: int) -> dict[str, _Appender] | None:
        if count == 0 and not fields:  # a piece of an open group: no group fields yet
            return appenders
        if appenders is None:
            sub = self.group.require_group(kind)
            appenders = {name: _Appender(sub, name, np.asarray(a).dtype, np.asarray(a).shape[1:], self.level)
                         for name, a in fields.items()}
        if set(fields) != set(appenders):
            raise ValueError(f"{kind} fields {sorted(fields)} differ from the first append's {sorted(appenders)}")
        for name, values in fields.items():
            if len(values) != count:
                raise ValueError(f"{kind} field {name!r} has {len(values)} rows, expected {count}")
            appenders[name].append(values)
        return appenders

    def close(self) -> None:
        for appender in [self.inputs, self.labels, self.puzzle_identifiers, self.puzzle_indices,
                         self.group_indices, *(self.puzzle_fields or {}).values(),
                         *(self.group_fields or {}).values()]:
            appender.close()


class SplitWriter:
    def __init__(self, group: zarr.Group, attrs: dict[str, Any], level: int = _ZSTD_LEVEL):
        self.group = group
        self.attrs = attrs
        self.level = level
        self.sets: dict[str, SetWriter] = {}

    def set(self, name: str = "all") -> SetWriter:
        if name not in self.sets:
            self.sets[name] = SetWriter(self.group.create_group(name), self.attrs["seq_len"], self.level)
        return self.sets[name]

    def close(self, num_puzzle_identifiers: int) -> None:
        for writer in self.sets.values():
            writer.close()
        puzzles = sum(w.num_puzzles for w in self.sets.values())
        examples = sum(w.num_examples for w in self.sets.values())
        self.group.attrs.update({
            **self.attrs,
            "num_puzzle_identifiers": num_puzzle_identifiers,
            "total_groups": sum(w.num_groups for w in self.sets.values()),
            "total_puzzles": puzzles,
            "total_examples": examples,
            "mean_puzzle_examples": examples / puzzles if puzzles else 0.0,
            "sets": list(self.sets),
        })


class DatasetWriter:
    """Writes one dataset into `root` (normally the temporary dir of `atomic_directory`).

        with atomic_directory(out, force=force) as tmp:
            writer = DatasetWriter(tmp, task="sudoku", seed=seed, builder=args)
            train = writer.split("train", seq_len=81, vocab_size=11)
            train.set().append(inputs, labels, examples_per_puzzle=..., puzzles_per_group=...)
            writer.close(extra_attrs)
    """

    def __init__(self, root: str | os.PathLike, *, task: str, seed: int | None,
                 builder: Mapping[str, Any], compression_level: int = _ZSTD_LEVEL):
        """`compression_level`: zstd level of every array; lower is faster. ARC writes ~7 GB of raw
        tokens with --aug 1000 and uses 3 (half the CPU of 5, ~5% larger); sudoku tokens compress
        as well at level 1 as at 5 (near their order-0 entropy) and ~4x faster, so it passes 1."""
        self.compression_level = compression_level
        self.root = zarr.open_group(Path(root), mode="w-", zarr_format=3)
        self.attrs: dict[str, Any] = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
                                      "task": task, "seed": seed, "builder": dict(builder)}
        self._identifiers = _Appender(self.root, "identifiers", str, (), compression_level)
        self._identifiers.append(np.array([BLANK_IDENTIFIER], dtype=object))
        self.splits: dict[str, SplitWriter] = {}

    @property
    def num_identifiers(self) -> int:
        return self._identifiers.rows

    def add_identifiers(self, names: Sequence[str]) -> np.ndarray:
        """Register new puzzle identifier names; returns their ids (consecutive int32)."""
        first = self._identifiers.rows
        self._identifiers.append(np.array(list(names), dtype=object))
        return np.arange(first, self._identifiers.rows, dtype=np.int32)

    def split(self, name: str, *, seq_len: int, vocab_size: int, pad_id: int = 0,
              ignore_label_id: int = 0, **extra_attrs: Any) -> SplitWriter:
        if name in self.splits:
            raise ValueError(f"split {name!r} already exists")
        attrs = {"seq_len": seq_len, "vocab_size": vocab_size, "pad_id": pad_id,
                 "ignore_label_id": ignore_label_id, "blank_identifier_id": 0, **extra_attrs}
        self.splits[name] = SplitWriter(self.root.create_group(name), attrs, self.compression_level)
        return self.splits[name]

    def close(self, **extra_attrs: Any) -> None:
        self._identifiers.close()
        for split in self.splits.values():
            split.close(self.num_identifiers)
        self.root.attrs.update({**self.attrs, "num_puzzle_identifiers": self.num_identifiers,
                                "splits": list(self.splits), **extra_attrs})


# ----------------------------------------------------------------------------- reading


@dataclass
class PuzzleSet:
    """One set of one split. Index arrays are small and loaded; token arrays stay on disk."""

    name: str
    group: zarr.Group

    @property
    def inputs(self) -> zarr.Array:
        return self.group["inputs"]

    @property
    def labels(self) -> zarr.Array:
        return self.group["labels"]

    def rows(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and labels of examples [start, stop), read from only the chunks needed."""
        return checked_read(self.inputs, start, stop), checked_read(self.labels, start, stop)

    def _cached(self, key: str) -> np.ndarray:
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            cache[key] = checked_read(self.group[key])
        return cache[key]

    @property
    def puzzle_identifiers(self) -> np.ndarray:
        return self._cached("puzzle_identifiers")

    @property
    def puzzle_indices(self) -> np.ndarray:
        return self._cached("puzzle_indices")

    @property
    def group_indices(self) -> np.ndarray:
        return self._cached("group_indices")

    @property
    def num_examples(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def num_puzzles(self) -> int:
        return int(self.group["puzzle_identifiers"].shape[0])

    @property
    def num_groups(self) -> int:
        return int(self.group["group_indices"].shape[0]) - 1

    def field_names(self, kind: str = "puzzle") -> list[str]:
        return sorted(self.group[kind].array_keys()) if kind in self.group else []

    def field(self, name: str, kind: str = "puzzle") -> np.ndarray:
        """A per-puzzle (`kind="puzzle"`) or per-group (`kind="group"`) array, loaded whole."""
        if name not in self.field_names(kind):
            raise HrmError(f"dataset set {self.name!r} has no {kind} field {name!r}")
        return self._cached(f"{kind}/{name}")


@dataclass
class Split:
    name: str
    group: zarr.Group

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self.group.attrs)

    @property
    def seq_len(self) -> int:
        return int(self.group.attrs["seq_len"])

    @property
    def vocab_size(self) -> int:
        return int(self.group.attrs["vocab_size"])

    @property
    def has_solutions(self) -> bool:
        """False for a test split built without solutions (`hrm build-data arc --no-solutions`):
        no position is scored. Datasets written before this attr existed have solutions."""
        return bool(self.group.attrs.get("has_solutions", True))

    @property
    def set_names(self) -> list[str]:
        return list(self.group.attrs["sets"])

    def set(self, name: str = "all") -> PuzzleSet:
        if name not in self.set_names:
            raise HrmError(f"split {self.name!r} has no set {name!r} (sets: {', '.join(self.set_names)})")
        return PuzzleSet(name, self.group[name])

    @property
    def sets(self) -> dict[str, PuzzleSet]:
        return {name: self.set(name) for name in self.set_names}


class Dataset:
    """A dataset opened for reading; raises HrmError for anything that is not format 1."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise HrmError(f"dataset {self.path} does not exist")
        if not (self.path / "zarr.json").is_file():
            raise HrmError(f"{self.path} is not an hrm dataset (no zarr.json; build one with `hrm build-data`)")
        try:
            self.root = zarr.open_group(self.path, mode="r", zarr_format=3)
        except Exception as error:  # zarr raises several types for a damaged group
            raise HrmError(f"{self.path} is not a readable zarr v3 group: {error}") from None
        attrs = dict(self.root.attrs)
        if attrs.get("format") != FORMAT_NAME:
            raise HrmError(f"{self.path} is not an hrm dataset (format={attrs.get('format')!r})")
        version = attrs.get("format_version")
        if version != FORMAT_VERSION:
            newer = isinstance(version, int) and version > FORMAT_VERSION
            raise HrmError(f"{self.path} has dataset format version {version}; this hrm reads version "
                           f"{FORMAT_VERSION}" + ("; upgrade hrm" if newer else ""))
        self.attrs = attrs

    @property
    def task(self) -> str:
        return self.attrs["task"]

    @property
    def split_names(self) -> list[str]:
        return list(self.attrs.get("splits", []))

    def split(self, name: str) -> Split:
        if name not in self.split_names:
            raise HrmError(f"{self.path} has no split {name!r} (splits: {', '.join(self.split_names)})")
        return Split(name, self.root[name])

    @property
    def num_identifiers(self) -> int:
        return int(self.attrs["num_puzzle_identifiers"])

    def identifiers(self) -> np.ndarray:
        """All identifier names (id -> name); ~1M strings for ARC with 1000 augmentations."""
        return checked_read(self.root["identifiers"])


def open_dataset(path: str | os.PathLike) -> Dataset:
    return Dataset(path)
