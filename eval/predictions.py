"""The predictions table of SPEC 6: one Parquet row per evaluated example.

    set         string          the dataset set the example belongs to (usually "all")
    example     int64           the example's row in that set
    prediction  list<uint8>     seq_len predicted tokens (argmax), in the version's own frame
    q_halt      float32         the q_halt logit after the last ACT segment
    residual    float32         optional (test-time candidates): how far the last segment moved
                                the states (eval.candidates.state_residual), for `--rank residual`

With test-time candidates (`hrm eval --samples/--restarts`) an example has one row per candidate.

Writing streams (`PredictionWriter`: one Parquet row group per ~64k rows) into a temporary
sibling that is renamed into place only when complete. The file's schema metadata records
which dataset the predictions belong to (task, split, seq_len, examples per set), so that a
table scored against another dataset is refused with one line instead of producing a
meaningless score. Tables without that metadata (written by other tools) are still accepted
when their columns, lengths and row numbers fit the dataset.
"""
from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hrm.common import HrmError
from hrm.common.outputs import OutputKind
from hrm.builders.dataset import Dataset, Split

SCHEMA = pa.schema([("set", pa.string()), ("example", pa.int64()),
                    ("prediction", pa.list_(pa.uint8())), ("q_halt", pa.float32())])
RESIDUAL_SCHEMA = SCHEMA.append(pa.field("residual", pa.float32()))
METADATA_KEY = b"hrm.predictions"
_ROW_GROUP_ROWS = 65536


def is_hrm_table(path: Path) -> bool:
    """Whether `path` is a Parquet table written by hrm (predictions or per-task results)."""
    try:
        keys = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowException):
        return False
    return any(key.startswith(b"hrm.") for key in keys)


PREDICTIONS_OUTPUT = OutputKind("a predictions table", directory=False, written_by_hrm=is_hrm_table)


def predictions_dataset_signature(dataset: Dataset, split: str = "test") -> dict[str, Any]:
    """What a predictions table must agree with to be scored against `dataset`: task, split,
    sequence length, rows per set. (A checkpoint's tie to its training data is
    `eval.inference.model_dataset_signature`.)"""
    data_split = dataset.split(split)
    return {"task": dataset.task, "split": split, "seq_len": data_split.seq_len,
            "sets": {name: s.num_examples for name, s in data_split.sets.items()}}


class PredictionWriter:
    """Streams batches of predictions into `path` (atomic: temp file + rename on close).

        with PredictionWriter(path, seq_len=900, signature=predictions_dataset_signature(ds)) as writer:
            writer.write("all", example_rows, predictions, q_halt)
    """

    def __init__(self, path: str | os.PathLike, *, seq_len: int,
                 signature: dict[str, Any] | None = None, sources: Sequence[str] = (),
                 row_group_rows: int = _ROW_GROUP_ROWS, residual: bool = False):
        self.path = Path(path)
        self.seq_len = seq_len
        self.row_group_rows = row_group_rows
        self.rows = 0
        metadata = {"seq_len": seq_len, "sources": list(sources), **(signature or {})}
        self.schema = RESIDUAL_SCHEMA if residual else SCHEMA
        schema = self.schema.with_metadata({METADATA_KEY: json.dumps(metadata).encode()})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.parent / f".{self.path.name}.partial-{uuid.uuid4().hex[:8]}"
        # zstd: predictions of a trained model repeat the labels' structure and compress well.
        self._writer = pq.ParquetWriter(self._tmp, schema, compression="zstd",
                                        use_dictionary=["set"])
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0

    def write(self, set_name: str, examples: np.ndarray, predictions: np.ndarray,
              q_halt: np.ndarray, residual: np.ndarray | None = None) -> None:
        predictions = np.ascontiguousarray(predictions, dtype=np.uint8)
        n = len(predictions)
        if predictions.ndim != 2 or predictions.shape[1] != self.seq_len:
            raise ValueError(f"predictions of shape {predictions.shape}, expected [n, {self.seq_len}]")
        if len(examples) != n or len(q_halt) != n:
            raise ValueError("examples, predictions and q_halt must have the same length")
        offsets = pa.array(np.arange(n + 1, dtype=np.int32) * self.seq_len)
        columns = [
            pa.array([set_name] * n, pa.string()),
            pa.array(np.asarray(examples, np.int64)),
            pa.ListArray.from_arrays(offsets, pa.array(predictions.reshape(-1))),
            pa.array(np.asarray(q_halt, np.float32)),
        ]
        if self.schema is RESIDUAL_SCHEMA:
            columns.append(pa.array(np.full(n, np.nan, np.float32) if residual is None
                                    else np.asarray(residual, np.float32)))
        batch = pa.RecordBatch.from_arrays(columns, schema=self.schema)
        self._pending.append(batch)
        self._pending_rows += n
        self.rows += n
        if self._pending_rows >= self.row_group_rows:
            self._flush()

    def _flush(self) -> None:
        if self._pending_rows:
            self._writer.write_table(pa.Table.from_batches(self._pending, self.schema),
                                     row_group_size=self.row_group_rows)
        self._pending, self._pending_rows = [], 0

    def close(self) -> None:
        self._flush()
        self._writer.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._writer.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "PredictionWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


@dataclass
class PredictionBatch:
    """Validated rows of one set: example rows int64 [b], predictions uint8 [b, seq_len], q_halt
    float32 [b], and residual float32 [b] when known (test-time candidates; None otherwise)."""

    set_name: str
    examples: np.ndarray
    predictions: np.ndarray
    q_halt: np.ndarray
    residual: np.ndarray | None = None


def _open(path: Path) -> pq.ParquetFile:
    if not path.is_file():
        raise HrmError(f"predictions table {path} does not exist")
    try:
        return pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises ArrowInvalid/OSError for non-Parquet files
        raise HrmError(f"{path} is not a readable Parquet file: {error}") from None


def table_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The hrm metadata of a predictions table ({} for tables written by other tools)."""
    raw = (_open(Path(path)).schema_arrow.metadata or {}).get(METADATA_KEY)
    return json.loads(raw) if raw else {}


def _check_schema(path: Path, schema: pa.Schema) -> None:
    expected = {"set": "a string", "example": "an integer", "prediction": "a list of uint8",
                "q_halt": "a float"}
    missing = [name for name in expected if name not in schema.names]
    if missing:
        raise HrmError(f"{path}: not a predictions table, missing column(s) {', '.join(missing)} "
                       f"(expected set, example, prediction, q_halt)")
    types = {name: schema.field(name).type for name in expected}
    ok = {
        "set": pa.types.is_string(types["set"]) or pa.types.is_large_string(types["set"])
        or (pa.types.is_dictionary(types["set"]) and pa.types.is_string(types["set"].value_type)),
        "example": pa.types.is_integer(types["example"]),
        "prediction": (pa.types.is_list(types["prediction"]) or pa.types.is_large_list(types["prediction"])
                       or pa.types.is_fixed_size_list(types["prediction"]))
        and pa.types.is_uint8(types["prediction"].value_type),
        "q_halt": pa.types.is_floating(types["q_halt"]),
    }
    for name, good in ok.items():
        if not good:
            raise HrmError(f"{path}: column {name!r} has type {types[name]}, expected {expected[name]}")


def check_table(path: str | os.PathLike, dataset: Dataset, split: str = "test") -> pq.ParquetFile:
    """Open a predictions table and check that it was made for `dataset` (schema + metadata)."""
    path = Path(path)
    parquet = _open(path)
    _check_schema(path, parquet.schema_arrow)
    meta = table_metadata(path)
    signature = predictions_dataset_signature(dataset, split)
    for key in ("task", "seq_len"):
        if key in meta and meta[key] != signature[key]:
            raise HrmError(f"{path} holds predictions for a {key}={meta[key]} dataset, but {dataset.path} "
                           f"has {key}={signature[key]} (a table for another dataset?)")
    for set_name, rows in (meta.get("sets") or {}).items():
        if signature["sets"].get(set_name) != rows:
            raise HrmError(f"{path} was made for a dataset whose set {set_name!r} has {rows} examples; "
                           f"{dataset.path} {split}/{set_name} has {signature['sets'].get(set_name, 0)} "
                           f"(a table for another dataset?)")
    return parquet


def iter_predictions(path: str | os.PathLike, dataset: Dataset, split: str = "test",
                     batch_rows: int = 32768) -> Iterator[PredictionBatch]:
    """Stream a predictions table as validated per-set batches (row lengths, row numbers, nulls)."""
    path = Path(path)
    parquet = check_table(path, dataset, split)
    data_split: Split = dataset.split(split)
    seq_len, sizes = data_split.seq_len, {name: s.num_examples for name, s in data_split.sets.items()}
    columns = ["set", "example", "prediction", "q_halt"]
    has_residual = "residual" in parquet.schema_arrow.names and pa.types.is_floating(
        parquet.schema_arrow.field("residual").type)
    for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns + ["residual"] * has_residual):
        if any(batch.column(i).null_count for i in range(4)):
            raise HrmError(f"{path}: the predictions table has null values")
        lists = batch.column("prediction")
        lengths = pc.list_value_length(lists).to_numpy()
        if len(lengths) and (lengths != seq_len).any():
            bad = int(lengths[lengths != seq_len][0])
            raise HrmError(f"{path}: predictions have {bad} tokens per row, but {dataset.path} split "
                           f"{split!r} has seq_len {seq_len} (a table for another dataset?)")
        tokens = lists.flatten().to_numpy(zero_copy_only=False).reshape(-1, seq_len)
        examples = batch.column("example").to_numpy().astype(np.int64)
        q_halt = batch.column("q_halt").to_numpy().astype(np.float32)
        residual = (batch.column("residual").to_numpy(zero_copy_only=False).astype(np.float32)
                    if has_residual else None)
        set_codes = pc.dictionary_encode(batch.column("set").cast(pa.string()))
        for code, set_name in enumerate(set_codes.dictionary.to_pylist()):
            if set_name not in sizes:
                raise HrmError(f"{path}: set {set_name!r} is not in {dataset.path} split {split!r} "
                               f"(sets: {', '.join(sizes)})")
            rows = np.flatnonzero(set_codes.indices.to_numpy() == code)
            if len(rows) == len(examples):
                rows = slice(None)
            chosen = examples[rows]
            outside = chosen[(chosen < 0) | (chosen >= sizes[set_name])]
            if len(outside):
                raise HrmError(f"{path}: example row {int(outside[0])} is outside {split}/{set_name} "
                               f"({sizes[set_name]} examples; a table for another dataset?)")
            yield PredictionBatch(set_name, chosen, tokens[rows], q_halt[rows],
                                  None if residual is None else residual[rows])
