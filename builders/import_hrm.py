"""`hrm build-data import-hrm`: convert a dataset in the reference code's .npy layout (SPEC 2).

    SRC/identifiers.json                   ["<blank>", name, ...]
    SRC/{train,test}/dataset.json          seq_len, vocab_size, pad_id, ignore_label_id, sets, ...
    SRC/{split}/{set}__{field}.npy         inputs, labels, puzzle_identifiers, puzzle_indices, group_indices

Arrays are memory-mapped (never unpickled: allow_pickle=False), checked for shape and index
consistency before anything is written, and copied group by group in bounded batches.
Augmentation descriptors: ARC names (`<task>_t<id>_<digits>`) give them exactly; the reference
records none for sudoku and maze, whose test splits it never augments, so the test split gets
identity descriptors and the train split none.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from hrm.augment.arc import parse_version_name
from hrm.common.json_input import read_json
from hrm.common import HrmError, UsageError, log, progress
from hrm.builders.dataset import BLANK_IDENTIFIER, DatasetWriter, SetWriter, atomic_directory

FIELDS = ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")
TASKS = ("sudoku", "maze", "arc")
_BATCH_ROWS = 32768
_META_KEYS = ("seq_len", "vocab_size", "pad_id", "ignore_label_id", "sets")


def infer_task(seq_len: int, vocab_size: int) -> str | None:
    """The task of a reference dataset from its token layout (SPEC 3), or None if unclear."""
    side = math.isqrt(seq_len)
    if (seq_len, vocab_size) == (900, 12):
        return "arc"
    if (seq_len, vocab_size) in ((81, 11), (16, 6)):
        return "sudoku"
    if vocab_size == 6 and side * side == seq_len and side >= 5:
        return "maze"
    return None


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise HrmError(f"{path} does not exist (expected the reference layout {{set}}__{{field}}.npy)")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as error:
        raise HrmError(f"{path}: not a plain numeric .npy array ({error})") from None
    except OSError as error:
        raise HrmError(f"{path}: unreadable .npy file ({error})") from None
    if array.dtype.kind not in "iu":
        raise HrmError(f"{path}: dtype {array.dtype}, expected integers")
    return array


def _monotone_index(array: np.ndarray, path: Path, end: int, what: str) -> np.ndarray:
    index = np.asarray(array, np.int64)
    if index.ndim != 1 or len(index) < 1 or index[0] != 0 or index[-1] != end or np.any(np.diff(index) < 0):
        raise HrmError(f"{path}: must be a non-decreasing 1-D index from 0 to {end} (the number of {what})")
    return index


def _load_set(split_dir: Path, set_name: str, meta: dict, num_identifiers: int) -> dict[str, Any]:
    paths = {field: split_dir / f"{set_name}__{field}.npy" for field in FIELDS}
    arrays = {field: _load_npy(path) for field, path in paths.items()}
    inputs, labels = arrays["inputs"], arrays["labels"]
    if inputs.ndim != 2 or inputs.shape[1] != meta["seq_len"]:
        raise HrmError(f"{paths['inputs']}: shape {inputs.shape}, expected [N, {meta['seq_len']}] (seq_len)")
    if labels.shape != inputs.shape:
        raise HrmError(f"{paths['labels']}: shape {labels.shape} differs from inputs {inputs.shape}")
    identifiers = np.asarray(arrays["puzzle_identifiers"], np.int64)
    puzzle_indices = _monotone_index(arrays["puzzle_indices"], paths["puzzle_indices"], len(inputs), "examples")
    if identifiers.ndim != 1 or len(identifiers) != len(puzzle_indices) - 1:
        raise HrmError(f"{paths['puzzle_identifiers']}: {identifiers.shape[0]} puzzles, but puzzle_indices "
                       f"describes {len(puzzle_indices) - 1}")
    if len(identifiers) and (identifiers.min() < 0 or identifiers.max() >= num_identifiers):
        raise HrmError(f"{paths['puzzle_identifiers']}: identifiers must be in 0..{num_identifiers - 1} "
                       "(identifiers.json / num_puzzle_identifiers)")
    group_indices = _monotone_index(arrays["group_indices"], paths["group_indices"], len(identifiers), "puzzles")
    return {"inputs": inputs, "labels": labels, "identifiers": identifiers.astype(np.int32),
            "puzzle_indices": puzzle_indices, "group_indices": group_indices, "paths": paths}


def _descriptors(task: str, split: str, seq_len: int, names: list[str]) -> dict[str, np.ndarray] | None:
    """Per-identifier descriptor arrays (indexed by identifier id), or None when unknown."""
    if task == "arc":
        parsed = [parse_version_name(name) for name in names]
        return {"aug_dihedral": np.array([p[1] for p in parsed], np.uint8),
                "aug_colour_map": np.stack([p[2] for p in parsed]).astype(np.uint8)}
    if split != "test":
        return None
    count = len(names)
    if task == "maze":
        return {"aug_dihedral": np.zeros(count, np.uint8)}
    side = math.isqrt(seq_len)
    return {"aug_transpose": np.zeros(count, np.uint8),
            "aug_row_perm": np.tile(np.arange(side, dtype=np.uint8), (count, 1)),
            "aug_col_perm": np.tile(np.arange(side, dtype=np.uint8), (count, 1)),
            "aug_digit_map": np.tile(np.arange(side + 1, dtype=np.uint8), (count, 1))}


def _tokens(array: np.ndarray, rows: slice, vocab_size: int, path: Path) -> np.ndarray:
    block = np.asarray(array[rows])
    if block.size and (block.min() < 0 or block.max() >= vocab_size):
        bad = int(np.flatnonzero(((block < 0) | (block >= vocab_size)).any(axis=1))[0]) + rows.start
        raise HrmError(f"{path}: row {bad} holds a token outside 0..{vocab_size - 1} (vocab_size)")
    return block.astype(np.uint8)


def _copy_set(target: SetWriter, data: dict[str, Any], descriptors: dict[str, np.ndarray] | None,
              vocab_size: int) -> None:
    pi, gi, ids = data["puzzle_indices"], data["group_indices"], data["identifiers"]
    group_rows = pi[gi]  # first row of each group (and the end)

    def fields(p0: int, p1: int) -> dict[str, np.ndarray] | None:
        return {k: v[ids[p0:p1]] for k, v in descriptors.items()} if descriptors else None

    def rows(r0: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
        return (_tokens(data["inputs"], slice(r0, r1), vocab_size, data["paths"]["inputs"]),
                _tokens(data["labels"], slice(r0, r1), vocab_size, data["paths"]["labels"]))

    group, groups = 0, len(gi) - 1
    bar = progress(total=groups, desc="import", unit="group")
    while group < groups:
        end = max(group + 1, int(np.searchsorted(group_rows, group_rows[group] + _BATCH_ROWS, "right")) - 1)
        p0, p1 = gi[group], gi[end]
        if end == group + 1 and group_rows[end] - group_rows[group] > _BATCH_ROWS:
            # one group larger than a batch: stream it puzzle range by puzzle range
            step = max(1, int((p1 - p0) * _BATCH_ROWS // max(1, group_rows[end] - group_rows[group])))
            for q0 in range(p0, p1, step):
                q1 = min(q0 + step, p1)
                target.append_to_group(*rows(pi[q0], pi[q1]), examples_per_puzzle=np.diff(pi[q0:q1 + 1]),
                                       last=q1 == p1, puzzle_identifiers=ids[q0:q1], puzzle_fields=fields(q0, q1))
        else:
            target.append(*rows(pi[p0], pi[p1]), examples_per_puzzle=np.diff(pi[p0:p1 + 1]),
                          puzzles_per_group=np.diff(gi[group:end + 1]), puzzle_identifiers=ids[p0:p1],
                          puzzle_fields=fields(p0, p1))
        bar.update(end - group)
        group = end
    bar.close()


def import_hrm(src: str | os.PathLike, out: str | os.PathLike, *, task: str | None = None,
               force: bool = False) -> dict[str, Any]:
    """Convert the reference dataset at `src` into our format at `out`; returns a summary."""
    started = time.perf_counter()
    src = Path(src)
    if not src.is_dir():
        raise HrmError(f"{src} is not a folder (expected the reference layout SRC/{{train,test}}/dataset.json)")
    splits = [name for name in ("train", "test") if (src / name / "dataset.json").is_file()]
    if not splits:
        raise HrmError(f"{src}: no train/dataset.json or test/dataset.json (not a reference-layout dataset)")
    metas = {}
    for split in splits:
        meta = read_json(src / split / "dataset.json")
        missing = [key for key in _META_KEYS if not isinstance(meta, dict) or key not in meta]
        if missing:
            raise HrmError(f"{src / split / 'dataset.json'}: missing {', '.join(missing)}")
        if not isinstance(meta["sets"], list) or not all(isinstance(s, str) and s for s in meta["sets"]):
            raise HrmError(f"{src / split / 'dataset.json'}: 'sets' must be a list of set names")
        metas[split] = meta
    first = metas[splits[0]]
    inferred = infer_task(int(first["seq_len"]), int(first["vocab_size"]))
    if task is None and inferred is None:
        raise HrmError(f"{src}: cannot tell the task from seq_len {first['seq_len']} and vocab_size "
                       f"{first['vocab_size']}; pass --task {'|'.join(TASKS)}")
    task = task or inferred
    if task not in TASKS:
        raise UsageError(f"--task must be one of {', '.join(TASKS)}, got {task!r}")
    names = _identifier_names(src, int(first.get("num_puzzle_identifiers", 1)))
    loaded = {(split, set_name): _load_set(src / split, set_name, metas[split], len(names))
              for split in splits for set_name in metas[split]["sets"]}  # all checked before writing
    counts: dict[str, int] = {}
    with atomic_directory(out, force=force) as tmp:
        writer = DatasetWriter(tmp, task=task, seed=None, builder={"import_hrm": str(src), "task": task})
        writer.add_identifiers(names[1:])
        for split in splits:
            meta = metas[split]
            if int(meta["vocab_size"]) > 256:
                raise HrmError(f"{src / split / 'dataset.json'}: vocab_size {meta['vocab_size']} does not fit uint8")
            target = writer.split(split, seq_len=int(meta["seq_len"]), vocab_size=int(meta["vocab_size"]),
                                  pad_id=int(meta["pad_id"]), ignore_label_id=int(meta["ignore_label_id"] or 0))
            descriptors = _descriptors(task, split, int(meta["seq_len"]), names)
            for set_name in meta["sets"]:
                _copy_set(target.set(set_name), loaded[split, set_name], descriptors, int(meta["vocab_size"]))
                counts[f"{split}/{set_name}"] = len(loaded[split, set_name]["inputs"])
        writer.close(imported_from=str(src))
    log(f"imported {src} as a {task} dataset")
    return {"out": str(out), "task": task, "examples": counts, "puzzle_identifiers": len(names),
            "seconds": round(time.perf_counter() - started, 2)}


def _identifier_names(src: Path, expected: int) -> list[str]:
    path = src / "identifiers.json"
    if not path.is_file():
        if expected <= 1:
            return [BLANK_IDENTIFIER]
        raise HrmError(f"{path} does not exist ({expected} puzzle identifiers need names)")
    names = read_json(path)
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise HrmError(f"{path}: expected a list of identifier names (strings), id 0 = {BLANK_IDENTIFIER!r}")
    if len(names) != expected:
        raise HrmError(f"{path}: {len(names)} names, but dataset.json says num_puzzle_identifiers {expected}")
    return names
