"""What a dataset holds: counts per split, per-group statistics (`hrm inspect`; the example it
renders is `hrm.show.views.example_text`)."""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from hrm.builders.damage import verify_group
from hrm.builders.dataset import open_dataset

_HISTOGRAM_BINS = 10


def histogram(values: np.ndarray, bins: int = _HISTOGRAM_BINS) -> list[dict[str, Any]]:
    """Integer-friendly histogram: [{"from": lo, "to": hi, "count": n}, ...] (hi inclusive)."""
    values = np.asarray(values).ravel()
    if values.size == 0:
        return []
    lo, hi = int(values.min()), int(values.max())
    if lo >= 0 and hi >= 1000 * max(lo, 1):
        # Counts spanning orders of magnitude (e.g. a maze's number of shortest paths, 1..2**30):
        # geometric bins, or one bin would hold nearly everything.
        edges = np.unique(np.round(np.geomspace(max(lo, 1), hi + 1, bins + 1)).astype(np.int64))
        edges = np.concatenate([[0] if lo == 0 else [], edges[:-1], [hi + 1]]).astype(np.int64)
    else:
        width = max(1, -(-(hi - lo + 1) // bins))
        edges = np.arange(lo, hi + width + 1, width)
    counts, _ = np.histogram(values, bins=edges)
    return [{"from": int(a), "to": int(b) - 1, "count": int(c)} for a, b, c in zip(edges, edges[1:], counts)]


def histogram_lines(bins: list[dict[str, Any]], indent: str = "      ") -> list[str]:
    """Text bars of a `histogram()` result, one line per bin."""
    labels = [f"{b['from']}" if b["from"] == b["to"] else f"{b['from']}-{b['to']}" for b in bins]
    width = max((len(label) for label in labels), default=0)
    peak = max((b["count"] for b in bins), default=0) or 1
    return [f"{indent}{label:>{width}} {b['count']:>8} {'#' * round(30 * b['count'] / peak)}"
            for label, b in zip(labels, bins)]


def summarize(values: np.ndarray) -> dict[str, Any]:
    values = np.asarray(values)
    return {"min": values.min().item(), "mean": float(values.mean()), "max": values.max().item(),
            "histogram": histogram(values)}


def directory_bytes(path: os.PathLike) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def verify_dataset(path: str | os.PathLike) -> dict[str, Any]:
    """Read every chunk of the dataset at `path` (`hrm inspect --verify`; see `verify_group`)."""
    dataset = open_dataset(path)
    return verify_group(dataset.root, dataset.path)


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """A JSON-ready description of the dataset at `path`."""
    dataset = open_dataset(path)
    info: dict[str, Any] = {
        "path": str(dataset.path),
        "task": dataset.task,
        "format_version": dataset.attrs["format_version"],
        "seed": dataset.attrs.get("seed"),
        "builder": dataset.attrs.get("builder", {}),
        "num_puzzle_identifiers": dataset.num_identifiers,
        "bytes_on_disk": directory_bytes(dataset.path),
        "splits": {},
    }
    for key, value in dataset.attrs.items():
        if key not in {"format", "format_version", "task", "seed", "builder", "splits",
                       "num_puzzle_identifiers"}:
            info.setdefault("attrs", {})[key] = value
    for split_name in dataset.split_names:
        split = dataset.split(split_name)
        split_info: dict[str, Any] = {
            key: split.attrs[key] for key in ("seq_len", "vocab_size", "pad_id", "ignore_label_id")}
        split_info["has_solutions"] = split.has_solutions
        split_info["sets"] = {}
        for set_name, puzzle_set in split.sets.items():
            puzzles_per_group = np.diff(puzzle_set.group_indices)
            set_info: dict[str, Any] = {
                "groups": puzzle_set.num_groups, "puzzles": puzzle_set.num_puzzles,
                "examples": puzzle_set.num_examples,
                "puzzles_per_group": {k: v for k, v in summarize(puzzles_per_group).items()
                                      if k != "histogram"} if len(puzzles_per_group) else {},
                "group_fields": {}, "puzzle_fields": puzzle_set.field_names("puzzle"),
            }
            for field in puzzle_set.field_names("group"):
                values = puzzle_set.field(field, "group")
                if values.ndim == 1 and np.issubdtype(values.dtype, np.number) and values.size:
                    set_info["group_fields"][field] = summarize(values)
            split_info["sets"][set_name] = set_info
        info["splits"][split_name] = split_info
    return info


def _shorten(value: Any, limit: int = 160) -> str:
    """One readable line for a long attr (e.g. ARC's per-task shortfalls); --json has it all."""
    text = str(value)
    if len(text) <= limit:
        return text
    count = f" ({len(value)} entries; --json lists all)" if isinstance(value, (dict, list)) else ""
    return text[:limit] + " ..." + count


def format_description(info: dict[str, Any]) -> str:
    lines = [f"{info['path']}: {info['task']} dataset (format {info['format_version']}, seed {info['seed']}, "
             f"{info['bytes_on_disk'] / 2**20:.1f} MiB on disk, {info['num_puzzle_identifiers']} puzzle identifiers)"]
    for key, value in info.get("attrs", {}).items():
        lines.append(f"  {key}: {_shorten(value)}")
    for split_name, split in info["splits"].items():
        unscored = "" if split.get("has_solutions", True) else ", no solutions (nothing scored: unseen tasks)"
        lines.append(f"{split_name}: seq_len {split['seq_len']}, vocab {split['vocab_size']}{unscored}")
        for set_name, s in split["sets"].items():
            ppg = s["puzzles_per_group"]
            versions = (f", puzzles/group min {ppg['min']} mean {ppg['mean']:.1f} max {ppg['max']}"
                        if ppg else "")
            lines.append(f"  {set_name}: {s['groups']} groups, {s['puzzles']} puzzles, "
                         f"{s['examples']} examples{versions}")
            for field, stats in s["group_fields"].items():
                lines.append(f"    {field}: min {stats['min']} mean {stats['mean']:.2f} max {stats['max']}")
                lines.extend(histogram_lines(stats["histogram"]))
    return "\n".join(lines)
