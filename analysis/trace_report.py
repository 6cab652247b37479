"""The records of `hrm trace` (analysis/trace.py) as a table, a summary and text.

trace.parquet holds one row per traced example x update, example-major (an example's updates in
order), with the columns of TRACE_COLUMNS; summary.json averages them per update and carries the
participation ratios and the protocol.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from hrm.analysis.trace_files import TABLE_FILE, TRACE_KIND
from hrm.builders.dataset import Dataset, Split
from hrm.common import HrmError
from hrm.eval.batches import EvalBatch
from hrm.eval.inference import sequence_accuracy
from hrm.eval.metrics import maze_valid, sudoku_conflicts

if TYPE_CHECKING:
    from hrm.analysis.participation import NestedSums

TRACE_COLUMNS = {
    "set": "the set of the split",
    "example": "the example's row in its set",
    "item": "the item (original puzzle) in trace order, 0-based: pr_by_items takes the first k",
    "puzzle_identifier": "the example's puzzle identifier (its index in the dataset's identifier names)",
    "segment": "segment, 1-based",
    "update": "update across the whole trace, 1-based",
    "step": "update within the segment, 1-based",
    "module": "the module that updated: low/high (HRM), latent/answer (TRM), blocks (transformer)",
    "state": "the state it wrote: low (z_low, TRM's latent) or high (z_high, TRM's answer)",
    "residual": "||z_u - z_{u-1}|| / ||z_{u-1}|| of that state",
    "change_norm": "||z_u - z_{u-1}||",
    "state_norm": "||z_u||",
    "exact": "the decoded answer is right at every scored position (null: not scored)",
    "token_accuracy": "right scored positions / scored positions (null: not scored)",
    "changed": "tokens of the decoded answer that differ from the previous update's decode",
    "violations": "sudoku: cells breaking a rule (repeated digit, changed clue, no digit); else null",
    "valid": "sudoku: a complete valid grid; maze: a shortest path; else null",
    "q_halt": "q_halt logit at the segment's last update (null elsewhere)",
    "q_continue": "q_continue logit at the segment's last update (null elsewhere)",
    "prediction": "the decoded answer's tokens (argmax), in the example's own frame",
}


def build_table(item: EvalBatch, updates: list[dict[str, Any]], ends: list[int], items: np.ndarray,
                batch: dict[str, torch.Tensor], dataset: Dataset, split: Split) -> pa.Table:
    """The rows of one traced batch (its real examples only, of items `items`) from the records of
    analysis.trace.UpdateRecorder: `updates` in order, `ends` the index of each segment's last."""
    valid = np.flatnonzero(item.mask)
    keep = torch.from_numpy(valid).to(batch["inputs"].device)
    count, total, seq_len = len(valid), len(updates), batch["inputs"].shape[1]

    def stacked(key: str) -> torch.Tensor:  # [count, total]
        return torch.stack([u[key] for u in updates], dim=1).index_select(0, keep)

    tokens = torch.stack([u["tokens"] for u in updates], dim=1).index_select(0, keep)   # [count, total, seq]
    labels = batch["labels"].index_select(0, keep)[:, None].expand(-1, total, -1).reshape(-1, seq_len)
    rules = sequence_accuracy(tokens.reshape(-1, seq_len), labels, torch.zeros(count * total, device=keep.device))
    scored = (rules["scored_count"] > 0).cpu().numpy() & split.has_solutions
    flat_tokens = tokens.reshape(-1, seq_len).to(torch.uint8).cpu().numpy()
    inputs = np.repeat(item.batch["inputs"][valid], total, axis=0)
    missing = np.ones(count * total, bool)
    violations, valid_answer = np.zeros(count * total, np.int64), np.zeros(count * total, bool)
    if dataset.task == "sudoku":
        violations = sudoku_conflicts(flat_tokens, inputs).sum(axis=1)
        valid_answer = violations == 0
    elif dataset.task == "maze":
        valid_answer = maze_valid(flat_tokens, inputs)

    segment_of = np.searchsorted(np.asarray(ends), np.arange(total))   # 0-based
    first_of_segment = np.concatenate([[0], np.asarray(ends[:-1]) + 1])
    at_end = np.zeros(total, bool)
    at_end[ends] = True
    tile = lambda values: np.tile(np.asarray(values), count)  # noqa: E731  per update -> per row
    per_example = lambda values: np.repeat(np.asarray(values), total)  # noqa: E731
    end_mask = ~tile(at_end)
    columns = {
        "set": pa.array([item.set_name] * (count * total), pa.string()),
        "example": per_example(item.rows[valid]),
        "item": per_example(items),
        "puzzle_identifier": per_example(item.batch["puzzle_identifiers"][valid]).astype(np.int32),
        "segment": tile(segment_of + 1).astype(np.int32),
        "update": tile(np.arange(1, total + 1)).astype(np.int32),
        "step": tile(np.arange(total) - first_of_segment[segment_of] + 1).astype(np.int32),
        "module": pa.array(tile([u["module"] for u in updates]), pa.string()),
        "state": pa.array(tile([u["state"] for u in updates]), pa.string()),
        **{key: stacked(key).reshape(-1).float().cpu().numpy() for key in ("residual", "change_norm", "state_norm")},
        "exact": pa.array(rules["exact"].cpu().numpy(), mask=~scored),
        "token_accuracy": pa.array(rules["token_accuracy"].float().cpu().numpy(), mask=~scored),
        "changed": stacked("changed").reshape(-1).cpu().numpy().astype(np.int32),
        "violations": pa.array(violations.astype(np.int32), mask=missing if dataset.task != "sudoku" else None),
        "valid": pa.array(valid_answer, mask=missing if dataset.task == "arc" else None),
        **{key: pa.array(stacked(key).reshape(-1).float().cpu().numpy(), mask=end_mask)
           for key in ("q_halt", "q_continue")},
        "prediction": pa.FixedSizeListArray.from_arrays(pa.array(flat_tokens.reshape(-1), pa.uint8()), seq_len),
    }
    return pa.table(columns)


def _stat(values: np.ndarray, mask: np.ndarray | None = None) -> float | None:
    values = values[mask] if mask is not None else values
    return float(values.mean()) if len(values) else None


def summarise(table: pa.Table, pr: dict[str, dict[str, "NestedSums"]], protocol: dict[str, Any]) -> dict[str, Any]:
    """summary.json: per update the residuals and accuracies averaged over the examples, the
    participation ratios, and the protocol."""
    total = protocol["segments"] * protocol["updates_per_segment"]
    shape = (-1, total)  # rows are example-major with every example's `total` updates
    column = lambda name: table.column(name).to_numpy(zero_copy_only=False).reshape(shape)  # noqa: E731
    residual = column("residual")
    meta = {name: column(name)[0] for name in ("update", "segment", "step", "module", "state")}
    scored = ~np.asarray(table.column("exact").is_null()).reshape(shape)
    exact = np.where(scored, column("exact"), False).astype(float)
    token = np.where(scored, column("token_accuracy"), 0.0).astype(float)
    q_halt = column("q_halt")
    task_checks = {name: table.column(name) for name in ("violations", "valid")}
    residual_by_update, accuracy_by_update = [], []
    for u in range(total):
        where = {key: (value[u].item() if hasattr(value[u], "item") else value[u]) for key, value in meta.items()}
        quartiles = np.percentile(residual[:, u], [25, 50, 75])
        residual_by_update.append({**where, "residual": float(residual[:, u].mean()),
                                   "residual_median": float(quartiles[1]), "residual_p25": float(quartiles[0]),
                                   "residual_p75": float(quartiles[2]),
                                   "change_norm": float(column("change_norm")[:, u].mean()),
                                   "state_norm": float(column("state_norm")[:, u].mean())})
        row = {key: where[key] for key in ("update", "segment", "step", "module")}
        row["exact"] = _stat(exact[:, u], scored[:, u])
        row["token_accuracy"] = _stat(token[:, u], scored[:, u])
        row["changed"] = float(column("changed")[:, u].mean())
        for name, values in task_checks.items():
            row[name] = None if values.null_count else float(
                values.to_numpy(zero_copy_only=False).reshape(shape)[:, u].astype(float).mean())
        q = q_halt[:, u].astype(float)
        row["q_halt"] = None if np.isnan(q).all() else float(np.nanmean(q))
        accuracy_by_update.append(row)
    sizes = next(iter(pr["trained"].values())).sizes
    participation = {which: {state: sums.total().participation_ratio() for state, sums in by_state.items()}
                     for which, by_state in pr.items()}
    return {
        "kind": TRACE_KIND,
        "protocol": protocol,
        "exact_accuracy": accuracy_by_update[-1]["exact"],
        "residual_by_update": residual_by_update,
        "accuracy_by_update": accuracy_by_update,
        "participation_ratio": {**participation,
                                "samples": {state: sums.total().count for state, sums in pr["trained"].items()},
                                "sample": protocol["pr_sample"]},
        "pr_by_items": {"items": sizes, **{which: {state: sums.participation_ratios()
                                                   for state, sums in by_state.items()}
                                           for which, by_state in pr.items()}},
        "columns": TRACE_COLUMNS,
    }


def write_table(table: pa.Table, path: str | os.PathLike, summary: dict[str, Any]) -> None:
    metadata = {b"hrm.trace": json.dumps(summary["protocol"]).encode()}
    pq.write_table(table.replace_schema_metadata(metadata), path, compression="zstd")


def read_example(folder: str | os.PathLike, set_name: str, example: int) -> pa.Table | None:
    """The rows of one traced example, in update order (None when it was not traced)."""
    path = Path(folder) / TABLE_FILE
    try:
        table = pq.read_table(path, filters=[("set", "=", set_name), ("example", "=", int(example))])
    except (OSError, pa.ArrowException) as error:
        raise HrmError(f"cannot read {path}: {error}") from None
    return table.sort_by("update") if table.num_rows else None


def _percent(value: float | None) -> str:
    return "not scored" if value is None else f"{value:.1%}"


def format_summary(summary: dict[str, Any]) -> str:
    """A few lines for the terminal: the protocol, by segment end the residuals and the accuracy,
    and the participation ratios."""
    p = summary["protocol"]
    lines = [f"trace of {p['checkpoint']} ({p['arch']}) on {p['data']} {p['split']}: {p['examples']} examples "
             f"({p['items']} of {p['of_items']} items, seed {p['seed']}), {p['segments']} segments x "
             f"{p['updates_per_segment']} updates"]
    rows = summary["accuracy_by_update"]
    residuals = {r["update"]: r for r in summary["residual_by_update"]}
    segments = sorted({row["segment"] for row in rows})
    if len(segments) > 8:
        segments = segments[:4] + segments[-4:]
    lines.append("  segment  exact        token        cell flips  residual at its last update")
    for segment in segments:
        mine = [row for row in rows if row["segment"] == segment]
        flips = sum(row["changed"] for row in mine)  # every change of a decoded cell, back and forth
        end = mine[-1]
        lines.append(f"  {segment:>7}  {_percent(end['exact']):<11}  {_percent(end['token_accuracy']):<11}  "
                     f"{flips:10.2f}  {residuals[end['update']]['residual']:.3g} ({end['module']})")
    ratio = summary["participation_ratio"]
    for which in ("trained", "untrained"):
        values = "  ".join(f"{state} {'-' if ratio[which][state] is None else f'{ratio[which][state]:.2f}'}"
                           for state in ("high", "low"))
        lines.append(f"  participation ratio, {which}: {values}")
    return "\n".join(lines)
