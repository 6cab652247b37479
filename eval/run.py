"""`evaluate`: the one entry point of eval/ (what `hrm eval` calls).

    evaluate(["runs/arc/checkpoints/step_1000.pt"], "data/arc1", vote_k=2, out="runs/arc/eval",
             submission="submission.json")
    evaluate([], "data/arc1", predictions=["preds.parquet"], vote_k=2)

With checkpoints, it runs each one over every example of the test split (train.inference),
streams the predictions into the scorer and, when asked, into a predictions table; several
checkpoints or tables vote together. Without checkpoints it scores existing tables.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pyarrow.parquet as pq

from hrm.common import HrmError, UsageError, log, progress
from hrm.common.outputs import OutputKind, check_output, output_file
from hrm.builders.dataset import Dataset, open_dataset
from hrm.eval.predictions import (PREDICTIONS_OUTPUT, PredictionBatch, PredictionWriter, is_hrm_table,
                                  predictions_dataset_signature)
from hrm.eval.score import ScoreResult, Scorer
from hrm.eval.subset import Subset, choose_subset, subset_batches
from hrm.eval.submission import SUBMISSION_OUTPUT, build_submission, write_submission

PREDICTIONS_FILE = "predictions.parquet"
RESULTS_FILE = "results.parquet"
METRICS_FILE = "metrics.json"


class _ModelRunner:
    """Runs checkpoints over a split. Under torchrun every rank predicts its slice of each
    global batch (train.data.eval_batches) and rank 0 gathers the slices; only rank 0 scores
    and writes. torch and the model load only here, so scoring a table stays light."""

    def __init__(self, device: str | None, threads: int | None = None):
        from hrm.train.distributed import setup
        from hrm.train.resources import apply_threads

        self.dist = setup(device or "auto")
        apply_threads(threads, self.dist.device)

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    def batches(self, checkpoint: Path, dataset: Dataset, split: str,
                batch_size: int | None, subset: Subset | None = None) -> Iterator[PredictionBatch]:
        import torch

        from hrm.train.distributed import gather_rows
        from hrm.train.inference import load_for_inference, predict_batches

        # Checks the checkpoint against the dataset before building the model; also takes
        # reference checkpoints (weights + all_config.yaml), built for this dataset's shapes.
        model, config = load_for_inference(checkpoint, device=self.dist.device, dataset=dataset)
        batch_size = batch_size or config.get("eval_batch_size") or config.get("global_batch_size") or 768
        total = subset.num_rows if subset is not None else dataset.split(split).attrs.get("total_examples")
        predicted = (_subset_predictions(model, dataset.split(split), subset, batch_size, self.dist)
                     if subset is not None else predict_batches(model, dataset.split(split), batch_size, self.dist))
        # examples/s and the time left, so that a long evaluation can be sized (--max-items)
        with progress(total=total, desc=f"eval {checkpoint.name}", unit="ex") as bar:
            for item, _, predictions, q_halt, _ in predicted:
                rows, tokens, q = torch.from_numpy(item.rows), predictions.to(torch.uint8), q_halt.float()
                if self.dist.world_size > 1:
                    # Every rank walks the same global batches in step with equal local batch sizes
                    # (pad rows have row -1): gather plain tensors on the device, not pickles.
                    rows, tokens, q = (gather_rows(t, self.dist.device) for t in (rows, tokens, q))
                if self.is_main:
                    valid = (rows >= 0).numpy()
                    bar.update(int(valid.sum()))
                    yield PredictionBatch(item.set_name, rows.numpy()[valid], tokens.cpu().numpy()[valid],
                                          q.cpu().numpy()[valid].astype(np.float32))

    def close(self) -> None:
        from hrm.train.distributed import teardown

        teardown()


def _subset_predictions(model: Any, split: Any, subset: Subset, batch_size: int, dist: Any) -> Iterator[tuple]:
    """predict_batches over the rows of a subset: (batch, tensors, predictions, q_halt, steps)."""
    from hrm.train.data import as_torch, prefetched
    from hrm.train.inference import run_batch

    was_training = model.training
    model.eval()
    try:
        for item in prefetched(subset_batches(split, subset, batch_size, dist)):
            tensors = as_torch(item.batch, dist.device)
            yield (item, tensors, *run_batch(model, tensors))
    finally:
        model.train(was_training)


def _is_metrics_file(path: Path) -> bool:
    try:
        summary = json.loads(path.read_text()) if path.stat().st_size < 2**24 else None
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and {"task", "data", "split"} <= set(summary)


RESULTS_OUTPUT = OutputKind("an hrm results table", directory=False, written_by_hrm=is_hrm_table)
METRICS_OUTPUT = OutputKind("an hrm eval metrics file", directory=False, written_by_hrm=_is_metrics_file)
_RESULTS_KEY = b"hrm.results"


def _write_results(out: Path, result: ScoreResult, force: bool) -> None:
    table = result.per_group.replace_schema_metadata(
        {**(result.per_group.schema.metadata or {}), _RESULTS_KEY: json.dumps({"data": result.summary["data"]}).encode()})
    with output_file(out / RESULTS_FILE, RESULTS_OUTPUT, force=force) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    with output_file(out / METRICS_FILE, METRICS_OUTPUT, force=force) as tmp:
        tmp.write_text(json.dumps(result.summary, indent=2) + "\n")


def _run_models(runner: _ModelRunner, checkpoints: list[Path], dataset: Dataset, split: str,
                batch_size: int | None, target: Path | None, scorer: Scorer) -> Scorer:
    """Predict with every checkpoint into one scorer (and into the table `target`, if any)."""
    writer = None
    if target is not None:
        signature = predictions_dataset_signature(dataset, split)
        writer = PredictionWriter(target, seq_len=signature["seq_len"], signature=signature,
                                  sources=[str(c) for c in checkpoints])
    try:
        for checkpoint in checkpoints:
            source = scorer.add_source(str(checkpoint))
            for batch in runner.batches(checkpoint, dataset, split, batch_size, scorer.subset):
                if writer is not None:
                    writer.write(batch.set_name, batch.examples, batch.predictions, batch.q_halt)
                scorer.add(batch, source)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        writer.close()
        log(f"wrote {writer.rows} predictions to {target}")
    return scorer


def evaluate(checkpoints: Sequence[str | os.PathLike] = (), data: str | os.PathLike = "", *, vote_k: int = 2,
             out: str | os.PathLike | None = None, predictions: Sequence[str | os.PathLike] = (),
             submission: str | os.PathLike | None = None, batch_size: int | None = None,
             device: str | None = None, split: str = "test", force: bool = False,
             max_items: int | None = None, max_versions: int | None = None, seed: int = 0,
             threads: int | None = None) -> dict[str, Any]:
    """Score `checkpoints` (or, without checkpoints, the `predictions` tables) on `data`.

    Returns the JSON-ready summary: `pass@K` for every K computed, `exact_accuracy`,
    `token_accuracy`, for ARC `score` (task-averaged pass@2), for sudoku/maze `valid_accuracy`
    and `valid@K`, plus counts and per-source accuracies. `out` receives predictions.parquet
    (when a model ran and no `predictions` path was given), results.parquet (per task/puzzle)
    and metrics.json; `submission` the Kaggle JSON (ARC). `max_items` / `max_versions` score a
    seeded subset (eval/subset.py), recorded as the summary's `subset` (None: everything).
    """
    checkpoints = [Path(c) for c in checkpoints]
    tables = [Path(p) for p in predictions]
    if vote_k < 1:
        raise UsageError(f"--vote must be at least 1, got {vote_k}")
    if not checkpoints and not tables:
        raise HrmError("nothing to score: give --checkpoint CKPT (run a model) or --predictions FILE (score a table)")
    if checkpoints and len(tables) > 1:
        raise HrmError("with --checkpoint, --predictions names the one table to write; give it once")
    dataset = open_dataset(data)
    out = Path(out) if out is not None else None
    if submission is not None and dataset.task != "arc":
        raise HrmError(f"--submission writes the Kaggle ARC format; {dataset.path} is a {dataset.task} dataset")
    if out is not None:  # every output is checked before any model runs
        if out.exists() and not out.is_dir():
            raise HrmError(f"--out {out} is a file; give a folder for the eval outputs")
        check_output(out / RESULTS_FILE, RESULTS_OUTPUT, force=force)
        check_output(out / METRICS_FILE, METRICS_OUTPUT, force=force)
    if submission is not None:
        if max_items is not None:
            raise UsageError("--submission needs an answer for every task; it cannot be combined with --max-items")
        check_output(submission, SUBMISSION_OUTPUT, force=force)
    subsetting = max_items is not None or max_versions is not None
    if checkpoints:
        for checkpoint in checkpoints:  # fail on a missing one before loading any model
            if not checkpoint.exists():
                raise HrmError(f"checkpoint {checkpoint} does not exist")
        target = tables[0] if tables else (out / PREDICTIONS_FILE if out is not None else None)
        if target is not None:
            check_output(target, PREDICTIONS_OUTPUT, force=force)
        runner = _ModelRunner(device, threads)
        try:
            scorer = Scorer(dataset, split, keep_grids=submission is not None)
            if subsetting:  # the same draw on every rank
                scorer.restrict(choose_subset(scorer, max_items, max_versions, seed))
                _log_subset(scorer)
            if not runner.is_main:  # other torchrun ranks only predict their slices
                for checkpoint in checkpoints:
                    for _ in runner.batches(checkpoint, dataset, split, batch_size, scorer.subset):
                        pass
                return {}
            scorer = _run_models(runner, checkpoints, dataset, split, batch_size, target, scorer)
        finally:
            runner.close()
    else:
        scorer = Scorer(dataset, split, keep_grids=submission is not None)
        if subsetting:
            scorer.restrict(choose_subset(scorer, max_items, max_versions, seed))
            _log_subset(scorer)
        for table in tables:
            scorer.add_table(table)
    result = scorer.result(vote_k)
    if out is not None:
        _write_results(out, result, force)
        log(f"wrote per-task results to {out / RESULTS_FILE}")
    if submission is not None:
        write_submission(submission, build_submission(result), force=force)
        log(f"wrote the submission to {submission}")
    return result.summary


def _log_subset(scorer: Scorer) -> None:
    subset = scorer.subset
    if subset is None:
        log("the subset options select the whole split: scoring everything")
        return
    versions = f", at most {subset.max_versions} versions each" if subset.max_versions else ""
    log(f"scoring a subset: {subset.items} of {subset.of_items} items{versions} "
        f"({subset.num_rows:,} examples, seed {subset.seed})")


def format_result(summary: dict[str, Any]) -> str:
    """The readable table `hrm eval` prints without --json."""
    lines = [f"{summary['task']} {summary['split']} split of {summary['data']}: "
             f"{summary['predictions']:,} predictions, {summary['test_inputs']:,} test inputs in "
             f"{summary['groups']:,} {'tasks' if summary['task'] == 'arc' else 'puzzles'}"
             + _subset_text(summary.get("subset"))]
    if summary.get("scored") is False:  # a split without solutions: predictions only
        lines.append(f"  nothing scored: {summary.get('not_scored_reason', 'the split has no solutions')}; "
                     f"{summary['covered_test_inputs']:,} of {summary['test_inputs']:,} test inputs have a "
                     f"valid predicted grid")
        return "\n".join(lines)
    rows: list[tuple[str, float]] = []
    if "score" in summary:
        rows.append(("score (task-averaged pass@2)", summary["score"]))
    rows += [("exact accuracy (per prediction)", summary["exact_accuracy"]),
             ("token accuracy (per prediction)", summary["token_accuracy"])]
    if "valid_accuracy" in summary:
        what = "valid solution" if summary["task"] == "sudoku" else "valid shortest path"
        rows.append((f"{what} (per prediction)", summary["valid_accuracy"]))
    rows += [(f"{key} (voted)", value) for key, value in summary.items()
             if key.startswith(("pass@", "valid@"))]
    width = max(len(name) for name, _ in rows)
    lines += [f"  {name:<{width}}  {value:7.2%}" for name, value in rows]
    if len(summary["sources"]) > 1:
        lines.append("  per source (exact / token accuracy):")
        lines += [f"    {s['source']}: {s['exact_accuracy']:.2%} / {s['token_accuracy']:.2%}"
                  for s in summary["sources"]]
    return "\n".join(lines)


def _subset_text(subset: dict[str, Any] | None) -> str:
    if not subset:
        return ""
    versions = f", at most {subset['max_versions']} versions each" if subset["max_versions"] else ""
    return f" (a subset: {subset['items']:,} of {subset['of_items']:,}{versions}, seed {subset['seed']})"
