"""`hrm trace`: what happens inside the recurrence, update by update (issue 23).

    summary = trace("runs/sudoku", "data/sudoku", out="runs/sudoku/trace", max_items=256, index=[3])

The model (hrm, trm or transformer) runs over N examples of a split for M segments exactly as
`hrm eval` runs it (eval.candidates.run_chunk, one plain candidate), with an observer on
`InnerModel.update`, the one call every recurrent update passes through (HRM: every low and high
step; TRM: every latent and answer update; the transformer: once per segment). The observer only
reads: the model computes what it computes without it. For every example and update u it records

- residual = ||z_u - z_{u-1}|| / ||z_{u-1}||: the L2 norm over all positions (puzzle-embedding
  positions included) and hidden units of the change of the state the update wrote (z_low for
  HRM's low / TRM's latent updates, z_high for HRM's high / TRM's answer / the transformer's),
  divided by the norm of that state before the update; change_norm = ||z_u - z_{u-1}|| and
  state_norm = ||z_u|| unnormalised beside it.
- the answer: HRM after a low step decodes one extra high-level pass z_high' = f_H(z_high, z_low)
  (damped like a real high step) through the heads, without keeping it (the paper's
  intermediate predictions); after a high step, and for TRM (the answer state y) and the
  transformer, the heads of z_high as it is. At the last update of a segment this is the
  segment's own output. Per update: exact and token accuracy (the rules of training and `hrm
  eval`; not scored where the split has no solutions), cells changed since the previous decode
  (at the first update: since the decode of the initial states), for sudoku the cells breaking a
  rule (eval.metrics.sudoku_conflicts), and q_halt / q_continue at the segment ends.
- the participation ratio of z_high and of z_low (analysis.participation; PR_SAMPLE says what one
  sample is), for the trained model and for an untrained one of the same config and seed (the
  run's own initial weights), over all traced items and over nested subsets (pr_by_items).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import torch

from hrm.analysis.participation import NestedSums
from hrm.analysis.trace_files import SUMMARY_FILE, TABLE_FILE, is_trace_folder
from hrm.builders.dataset import Dataset, Split, open_dataset
from hrm.common import HrmError, UsageError, log, progress
from hrm.common.outputs import OutputKind, atomic_directory, check_output
from hrm.eval.batches import as_torch, eval_batches
from hrm.eval.candidate_spec import CandidateSpec
from hrm.eval.candidates import run_chunk
from hrm.eval.inverse import SetFrames
from hrm.eval.subset import Subset, choose_subset

DEFAULT_ITEMS = 256
# Which carried state each module's updates write (the carry's two slots; TRM carries its answer
# y as z_high and its latent z as z_low, the transformer its one state as z_high).
STATE_OF = {"low": "low", "high": "high", "latent": "low", "answer": "high", "blocks": "high"}
PR_SAMPLE = ("one grid position's hidden vector (the seq_len token positions; the puzzle-embedding positions "
             "are left out) of one traced example after one update of that state; the covariance is over all "
             "of them (items x segments x updates x positions vectors of size hidden_size)")


TRACE_OUTPUT = OutputKind("an hrm trace folder", directory=True, written_by_hrm=is_trace_folder)


class UpdateRecorder:
    """The observer installed on `inner.update_observer` while one batch runs: tracks both
    states, and per update keeps the residuals, (with `decode`) the decoded answer, and adds the
    new state's grid positions to the PR sums of its items."""

    def __init__(self, inner: torch.nn.Module, rows: int, decode: bool, pr_sums: dict[str, NestedSums],
                 items: np.ndarray, keep: torch.Tensor | None = None):
        """`rows` examples run; `keep` (default: all) the rows that are real examples (not pad
        rows), of items `items` [len(keep)] (trace order): only they feed the PR sums."""
        self.inner, self.decode, self.pr_sums, self.items, self.keep = inner, decode, pr_sums, items, keep
        cfg = inner.config
        shape = (rows, cfg.seq_len + cfg.puzzle_emb_len, cfg.hidden_size)
        dtype = inner.compute_dtype(inner.H_init.device)
        self.state = {"high": inner.H_init.to(dtype).expand(shape), "low": inner.L_init.to(dtype).expand(shape)}
        self.updates: list[dict[str, Any]] = []
        self.segment_ends: list[int] = []   # index in `updates` of each segment's last update
        self.cos_sin = inner.rotary() if hasattr(inner, "H_level") else None
        self.previous = self._heads(self.state["high"])[0] if decode else None
        self._decoding = False

    def _heads(self, z_high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, q_halt, q_continue = self.inner.heads(z_high)
        return logits.argmax(-1), q_halt, q_continue

    def __call__(self, module: str, before: torch.Tensor, after: torch.Tensor) -> None:
        if self._decoding:  # the extra high pass below goes through update() too: not an update
            return
        state = STATE_OF[module]
        self.state[state] = after
        wide = torch.promote_types(after.dtype, torch.float32)
        change = torch.linalg.vector_norm((after - before).to(wide).flatten(1), dim=1)
        before_norm = torch.linalg.vector_norm(before.to(wide).flatten(1), dim=1)
        record = {"module": module, "state": state, "change_norm": change, "residual": change / before_norm,
                  "state_norm": torch.linalg.vector_norm(after.to(wide).flatten(1), dim=1)}
        grid = after[:, self.inner.config.puzzle_emb_len:]
        self.pr_sums[state].add(grid if self.keep is None else grid.index_select(0, self.keep), self.items)
        if self.decode:
            z_high = self.state["high"]
            if module == "low":  # HRM: the paper's extra high-level pass, not kept
                self._decoding = True
                try:
                    z_high = self.inner.update(z_high, self.inner.H_level(z_high, after, self.cos_sin), "high")
                finally:
                    self._decoding = False
            tokens, q_halt, q_continue = self._heads(z_high)
            record.update(tokens=tokens, changed=(tokens != self.previous).sum(-1), q_halt=q_halt,
                          q_continue=q_continue)
            self.previous = tokens
        self.updates.append(record)

    def end_segment(self) -> None:
        if not self.updates or (self.segment_ends and self.segment_ends[-1] == len(self.updates) - 1):
            raise HrmError("a segment ended without any recurrent update: the model does not call "
                           "InnerModel.update, so it cannot be traced")
        self.segment_ends.append(len(self.updates) - 1)


def run_traced(model: torch.nn.Module, batch: dict[str, torch.Tensor], segments: int, recorder: UpdateRecorder
               ) -> list[np.ndarray]:
    """`segments` segments of `batch` through hrm eval's loop with `recorder` observing; returns
    the loop's own predictions after every segment (what `hrm eval` scores)."""
    inner = model.inner
    inner.update_observer = recorder
    try:
        answers = []
        for segment in run_chunk(model, batch, CandidateSpec(steps=segments), generator=None):  # no noise
            recorder.end_segment()
            answers.append(segment.numpy().predictions)
        return answers
    finally:
        inner.update_observer = None


def untrained_like(model: torch.nn.Module, config: dict[str, Any], seed: int) -> torch.nn.Module:
    """The model a run with this config and seed starts from: the trainer seeds torch with the run's
    seed right before it builds the model (train.loop.build)."""
    from hrm.models.registry import build_for_dataset

    with torch.random.fork_rng(devices=[]):  # leave the caller's random stream as it was
        torch.manual_seed(seed)
        fresh = build_for_dataset(config["arch"], config["dataset"], config.get("global_batch_size") or 768)
    return fresh.to(next(model.parameters()).device).eval()


# ----------------------------------------------------------------------------- what to trace


def choose_rows(dataset: Dataset, split: Split, max_items: int, seed: int, index: Sequence[int]
                ) -> tuple[Subset, dict[str, np.ndarray], int]:
    """The traced rows (per set): the original version of `max_items` items drawn by `seed` (as
    `hrm eval --max-items N --max-versions 1` draws them), plus the rows `index` of the first set;
    and per set the item (trace order) of each row, and the number of items."""
    frames = {name: SetFrames(dataset.task, split.set(name)) for name in split.set_names}
    first = split.set_names[0]
    for i in index:
        n = split.set(first).num_examples
        if not 0 <= i < n:
            raise HrmError(f"--index {i} is out of range: {split.name}/{first} has {n} examples "
                           f"({f'0..{n - 1}' if n else 'none'})")
    subset = choose_subset(split, frames, max_items, 1, seed)
    rows = subset.rows if subset is not None else {
        name: np.arange(split.set(name).num_examples, dtype=np.int64) for name in split.set_names}
    rows = dict(rows)
    rows[first] = np.union1d(rows[first], np.asarray(index, np.int64))
    items: dict[str, np.ndarray] = {}
    next_item = 0
    for name, set_rows in rows.items():
        set_frames = frames[name]
        group = set_frames.puzzle_group[set_frames.example_puzzle[set_rows]]
        _, first_seen, inverse = np.unique(group, return_index=True, return_inverse=True)
        order = np.argsort(np.argsort(first_seen))  # items numbered in the order they are traced
        items[name] = next_item + order[inverse]
        next_item += len(first_seen)
    total = sum(len(r) for r in rows.values())
    if total == 0:
        raise HrmError(f"split {split.name} has no examples to trace")
    of_items = sum(f.num_groups for f in frames.values())
    traced = Subset(items=next_item, of_items=of_items, max_versions=1, seed=seed,
                    groups=np.zeros(of_items, bool), rows=rows)
    return traced, items, next_item


# ----------------------------------------------------------------------------- the run


def trace(checkpoint: str | os.PathLike, data: str | os.PathLike, out: str | os.PathLike, *, split: str = "test",
          max_items: int = DEFAULT_ITEMS, index: Sequence[int] = (), steps: int | None = None, seed: int = 0,
          force: bool = False, device: str | None = None, threads: int | None = None) -> dict[str, Any]:
    """Trace `checkpoint` on `data` into the folder `out` (trace.parquet, summary.json, pictures);
    returns the summary. Every input is checked before the model runs, and nothing is written
    unless the whole trace succeeds."""
    from hrm.analysis.trace_pictures import draw_all
    from hrm.analysis.trace_report import build_table, summarise, write_table
    from hrm.common.distributed import DistInfo, apply_threads, select_device
    from hrm.eval.inference import load_for_inference

    if max_items < 1:
        raise UsageError(f"--max-items must be at least 1, got {max_items}")
    if steps is not None and steps < 1:
        raise UsageError(f"--steps must be at least 1, got {steps}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise HrmError(f"--out {out} is a file; give a folder for the trace")
    check_output(out, TRACE_OUTPUT, force=force)
    if not Path(checkpoint).exists():
        raise HrmError(f"checkpoint {checkpoint} does not exist")
    dataset = open_dataset(data)
    data_split = dataset.split(split)
    traced, items, num_items = choose_rows(dataset, data_split, max_items, seed, index)
    chosen = select_device(device or "auto")
    apply_threads(threads, chosen)
    model, config = load_for_inference(checkpoint, device=chosen, dataset=dataset)
    if not hasattr(model, "inner") or not hasattr(model.inner, "update_observer"):
        raise HrmError("hrm trace needs an HRM-family model (hrm, trm, transformer)")
    segments = steps or int(model.config.halt_max_steps)
    untrained_seed = int(config.get("seed", seed))
    untrained = untrained_like(model, config, untrained_seed)
    hidden = model.config.hidden_size
    pr = {which: {s: NestedSums(num_items, hidden, chosen) for s in ("high", "low")}
          for which in ("trained", "untrained")}

    batch_size = min(int(config.get("eval_batch_size") or config.get("global_batch_size") or 256), traced.num_rows)
    dist = DistInfo(rank=0, world_size=1, local_rank=0, device=chosen)
    offsets = {name: 0 for name in traced.rows}
    chunks = []
    with progress(total=traced.num_rows, desc=f"trace {Path(checkpoint).name}", unit="ex") as bar:
        for item in eval_batches(data_split, batch_size, dist, rows=traced.rows):
            valid = item.mask
            start = offsets[item.set_name]
            offsets[item.set_name] += int(valid.sum())
            batch_items = np.zeros(len(valid), np.int64)
            batch_items[valid] = items[item.set_name][start:start + int(valid.sum())]
            tensors = as_torch(item.batch, chosen)
            # Pad rows run with the batch (as hrm eval's do) but add nothing to the PR sums.
            keep = torch.from_numpy(np.flatnonzero(valid)).to(chosen)
            recorder = UpdateRecorder(model.inner, len(valid), True, pr["trained"], batch_items[valid], keep)
            run_traced(model, tensors, segments, recorder)
            run_traced(untrained, tensors, segments,
                       UpdateRecorder(untrained.inner, len(valid), False, pr["untrained"], batch_items[valid], keep))
            chunks.append(build_table(item, recorder.updates, recorder.segment_ends, recorder.items, tensors, dataset,
                                      data_split))
            bar.update(int(valid.sum()))
    protocol = {"checkpoint": str(checkpoint), "step": config.get("step"), "arch": model.config.name,
                "data": str(dataset.path), "split": split, "examples": traced.num_rows, "items": num_items,
                "of_items": traced.of_items, "max_items": max_items, "segments": segments,
                "updates_per_segment": len(recorder.updates) // segments, "seed": seed,
                "untrained_seed": untrained_seed, "index": sorted({int(i) for i in index}),
                "scored": data_split.has_solutions, "pr_sample": PR_SAMPLE,
                # The traced run's training config (what `hrm compare TRACE...` tells traces apart by).
                "run_config": json.loads(json.dumps({key: value for key, value in config.items()
                                                     if key not in ("dataset", "step", "checkpoint")}, default=str))}
    table = pa.concat_tables(chunks)
    summary = summarise(table, pr, protocol)
    with atomic_directory(out, TRACE_OUTPUT, force=force) as tmp:
        tmp.mkdir(parents=True)
        write_table(table, tmp / TABLE_FILE, summary)
        (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
        draw_all(tmp, summary, protocol["index"], data=dataset)
    log(f"wrote the trace of {traced.num_rows} examples x {segments} segments to {out}")
    return summary

