"""Naming damage in a dataset: a chunk that does not read back is reported with the dataset, the
array, the chunk and its shard file, never as a codec's traceback.

New datasets carry a CRC32C per chunk (builders/dataset.py), so that damage reads as a failed
checksum; older ones fail in zstd instead, and are named the same way.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np
import zarr

from hrm.common import HrmError


class DatasetDamaged(HrmError):
    """A chunk of a dataset does not read back (its files changed after hrm wrote them)."""


def _shard_file(array: zarr.Array, shard: int) -> str:
    """The file of shard `shard` along the rows, relative to the dataset (zarr v3's default keys)."""
    return "/".join([array.path, "c", str(shard), *["0"] * (array.ndim - 1)])


def _dataset_root(array: zarr.Array) -> str:
    return str(getattr(array.store, "root", array.store))


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if "checksum" in text.lower():
        return "fails its checksum"
    return f"does not decode ({text})"


def _chunk_error(array: zarr.Array, chunk: int) -> BaseException | None:
    rows = array.chunks[0]
    try:
        array[chunk * rows:(chunk + 1) * rows]
    except Exception as error:  # zstd, checksum and shard-index failures have several types
        return error
    return None


def _damage(array: zarr.Array, chunk: int, error: BaseException) -> str:
    """ "train/all/inputs chunk 3 (rows 3072-4095, file train/all/inputs/c/0/0) fails its checksum" """
    rows = array.chunks[0]
    shard = chunk * rows // (array.shards or array.chunks)[0]
    last = min(array.shape[0], (chunk + 1) * rows) - 1
    return (f"{array.path} chunk {chunk} (rows {chunk * rows}-{last}, file {_shard_file(array, shard)}) "
            f"{_reason(error)}")


def damaged(array: zarr.Array, damage: str) -> DatasetDamaged:
    return DatasetDamaged(f"dataset {_dataset_root(array)} is damaged: {damage}; rebuild it with "
                          f"`hrm build-data` (`hrm inspect --verify` lists every damaged chunk)")


def checked_read(array: zarr.Array, start: int | None = None, stop: int | None = None) -> np.ndarray:
    """Rows [start, stop) of `array`; a chunk that does not decode raises `DatasetDamaged` naming
    the dataset, the array, the chunk and its file (never a codec's traceback)."""
    try:
        return array[start:stop]
    except Exception as error:
        lo, hi, _ = slice(start, stop).indices(array.shape[0])
        rows = array.chunks[0]
        for chunk in range(lo // rows, max(lo, hi - 1) // rows + 1):  # find the chunk to name
            found = _chunk_error(array, chunk)
            if found is not None:
                raise damaged(array, _damage(array, chunk, found)) from None
        raise damaged(array, f"{array.path} rows {lo}-{hi - 1} {_reason(error)}") from None


def _arrays(group: zarr.Group) -> Iterator[zarr.Array]:
    for _, member in sorted(group.members(), key=lambda item: item[0]):
        if isinstance(member, zarr.Group):
            yield from _arrays(member)
        else:
            yield member


def verify_group(root: zarr.Group, path: Path) -> dict[str, Any]:
    """Read every chunk of every array under `root` (a dataset stored at `path`):
    {"path", "arrays", "chunks", "damaged": [one description per damaged chunk]}. A missing
    shard file counts as damage too (zarr would read it as zeros)."""
    report: dict[str, Any] = {"path": str(path), "arrays": 0, "chunks": 0, "damaged": []}
    for array in _arrays(root):
        report["arrays"] += 1
        if array.shape[0] == 0:
            continue
        chunk_rows, shard_rows = array.chunks[0], (array.shards or array.chunks)[0]
        for shard in range(-(-array.shape[0] // shard_rows)):
            first, stop = shard * shard_rows, min(array.shape[0], (shard + 1) * shard_rows)
            chunks = range(first // chunk_rows, -(-stop // chunk_rows))
            report["chunks"] += len(chunks)
            if not (path / _shard_file(array, shard)).is_file():
                report["damaged"].append(f"{array.path} file {_shard_file(array, shard)} is missing")
                continue
            try:
                array[first:stop]  # a whole shard at once; chunk by chunk only to name damage
                continue
            except Exception:
                pass
            for chunk in chunks:
                error = _chunk_error(array, chunk)
                if error is not None:
                    report["damaged"].append(_damage(array, chunk, error))
    return report
