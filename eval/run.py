"""`evaluate`: the one entry point of eval/ (what `hrm eval` calls).

    evaluate(["runs/arc/checkpoints/step_1000.pt"], "data/arc1", vote_k=2, out="runs/arc/eval",
             submission="submission.json")
    evaluate([], "data/arc1", predictions=["preds.parquet"], vote_k=2)

With checkpoints, it runs each one over every example of the test split (eval.inference),
streams the predictions into the scorer and, when asked, into a predictions table; several
checkpoints or tables vote together. Without checkpoints it scores existing tables.

Test-time compute (`candidates`, eval.candidate_spec.CandidateSpec): each checkpoint gives K
candidates per example (eval.candidates), all ranked together with the augmented versions by
`rank` (eval.vote.RANKERS). Every segment's answers are scored as they come, so the summary
carries `accuracy_by_segment` (pass@1 after segment 1..M, from the same pass), and every summary
carries its `protocol`: what was scored, how the candidates were made and ranked.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pyarrow.parquet as pq

from hrm.common import HrmError, UsageError, log, plural, progress
from hrm.common.outputs import OutputKind, check_output, output_file
from hrm.builders.dataset import Dataset, open_dataset
from hrm.eval.candidate_spec import CandidateSpec
from hrm.eval.predictions import (PREDICTIONS_OUTPUT, PredictionBatch, PredictionWriter, is_hrm_table,
                                  predictions_dataset_signature)
from hrm.eval.pool import DEFAULT_DRAWS, format_pool_curve, plot_pool_curve
from hrm.eval.score import ScoreResult, Scorer
from hrm.show.charts import PICTURE_OUTPUT
from hrm.eval.subset import Subset, choose_subset
from hrm.eval.vote import RANKERS
from hrm.eval.submission import SUBMISSION_OUTPUT, build_submission, write_submission

PREDICTIONS_FILE = "predictions.parquet"
POOL_PICTURE = "pool.png"
RESULTS_FILE = "results.parquet"
METRICS_FILE = "metrics.json"


class _ModelRunner:
    """Runs checkpoints over a split. Under torchrun every rank predicts its slice of each
    global batch (eval.batches.eval_batches) and rank 0 gathers the slices; only rank 0 scores
    and writes. torch and the model load only here, so scoring a table stays light."""

    def __init__(self, device: str | None, threads: int | None = None):
        from hrm.common.distributed import apply_threads, setup

        self.dist = setup(device or "auto")
        apply_threads(threads, self.dist.device)

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    def batches(self, checkpoint: Path, dataset: Dataset, split: str, batch_size: int | None,
                candidates: CandidateSpec, subset: Subset | None = None) -> Iterator[list[PredictionBatch]]:
        """Per eval batch, its candidates' answers after every segment (the last is the answer)."""
        import torch

        from hrm.eval.candidates import candidate_batches
        from hrm.common.distributed import gather_rows
        from hrm.eval.inference import load_for_inference

        # Checks the checkpoint against the dataset before building the model; also takes
        # reference checkpoints (weights + all_config.yaml), built for this dataset's shapes.
        model, config = load_for_inference(checkpoint, device=self.dist.device, dataset=dataset)
        self.segments = candidates.steps or int(model.config.halt_max_steps)
        batch_size = batch_size or config.get("eval_batch_size") or config.get("global_batch_size") or 768
        data_split = dataset.split(split)
        total = subset.num_rows if subset is not None else data_split.attrs.get("total_examples")
        k = candidates.per_example
        # examples/s and the time left, so that a long evaluation can be sized (--max-items)
        with progress(total=total, desc=f"eval {checkpoint.name}", unit="ex") as bar:
            for item, _, segments in candidate_batches(model, data_split, batch_size, self.dist, candidates,
                                                       rows=subset.rows if subset is not None else None):
                rows = torch.from_numpy(np.repeat(item.rows, k))  # example-major candidates; pad rows have row -1
                per_segment = [(rows, answers.predictions, answers.q_halt, answers.residual) for answers in segments]
                if self.dist.world_size > 1:
                    # Every rank walks the same global batches in step with equal local batch sizes:
                    # gather plain tensors on the device, not pickles.
                    per_segment = [tuple(gather_rows(a, self.dist.device) for a in arrays) for arrays in per_segment]
                per_segment = [tuple(a.cpu().numpy() for a in arrays) for arrays in per_segment]  # the read-back
                if self.is_main:
                    valid = per_segment[-1][0] >= 0
                    bar.update(int(valid.sum()) // k)
                    yield [PredictionBatch(item.set_name, r[valid], p[valid], q[valid], e[valid])
                           for r, p, q, e in per_segment]

    def close(self) -> None:
        from hrm.common.distributed import teardown

        teardown()


def _is_metrics_file(path: Path) -> bool:
    try:
        summary = json.loads(path.read_text()) if path.stat().st_size < 2**24 else None
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and {"task", "data", "split"} <= set(summary)


RESULTS_OUTPUT = OutputKind("a results table", directory=False, written_by_hrm=is_hrm_table)
METRICS_OUTPUT = OutputKind("an eval metrics file", directory=False, written_by_hrm=_is_metrics_file)
_RESULTS_KEY = b"hrm.results"


def _write_results(out: Path, result: ScoreResult, force: bool) -> None:
    table = result.per_group.replace_schema_metadata(
        {**(result.per_group.schema.metadata or {}), _RESULTS_KEY: json.dumps({"data": result.summary["data"]}).encode()})
    with output_file(out / RESULTS_FILE, RESULTS_OUTPUT, force=force) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    with output_file(out / METRICS_FILE, METRICS_OUTPUT, force=force) as tmp:
        tmp.write_text(json.dumps(result.summary, indent=2) + "\n")


def _run_models(runner: _ModelRunner, checkpoints: list[Path], dataset: Dataset, split: str,
                batch_size: int | None, target: Path | None, scorer: Scorer,
                candidates: CandidateSpec, protocol: dict[str, Any]) -> tuple[Scorer, list[Scorer]]:
    """Predict with every checkpoint into `scorer` (and into the table `target`, if any);
    also (second value) one scorer per earlier segment, fed the answers after that segment."""
    earlier: list[Scorer] = []
    segments: int | None = None
    writer = None
    if target is not None:
        signature = predictions_dataset_signature(dataset, split)
        writer = PredictionWriter(target, seq_len=signature["seq_len"], signature={**signature, "protocol": protocol},
                                  sources=[str(c) for c in checkpoints], residual=True)
    try:
        for checkpoint in checkpoints:
            source = scorer.add_source(str(checkpoint))
            for n, per_segment in enumerate(runner.batches(checkpoint, dataset, split, batch_size, candidates,
                                                           scorer.subset)):
                if n == 0 and segments is None:
                    segments = runner.segments
                    earlier = [Scorer(dataset, split) for _ in range(segments - 1)]
                    for segment_scorer in earlier:
                        segment_scorer.restrict(scorer.subset)
                if n == 0 and runner.segments != segments:
                    raise HrmError(f"{checkpoint} runs {runner.segments} segments, the checkpoints before it "
                                   f"{segments}: give --steps M to run all of them the same number")
                batch = per_segment[-1]
                if writer is not None:
                    writer.write(batch.set_name, batch.examples, batch.predictions, batch.q_halt, batch.residual)
                labels, inputs = scorer.rows_of(batch)
                scorer.add(batch, source, labels, inputs)
                for segment_scorer, segment_batch in zip(earlier, per_segment[:-1]):
                    if len(segment_scorer.sources) <= source:
                        segment_scorer.add_source(str(checkpoint))
                    segment_scorer.add(segment_batch, source, labels, inputs)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        writer.close()
        log(f"wrote {writer.rows} predictions to {target}")
    return scorer, earlier


def evaluate(checkpoints: Sequence[str | os.PathLike] = (), data: str | os.PathLike = "", *, vote_k: int = 2,
             out: str | os.PathLike | None = None, predictions: Sequence[str | os.PathLike] = (),
             submission: str | os.PathLike | None = None, batch_size: int | None = None,
             device: str | None = None, split: str = "test", force: bool = False,
             candidates: CandidateSpec | None = None, rank: str = "votes",
             max_items: int | None = None, max_versions: int | None = None, seed: int = 0,
             threads: int | None = None, pool: Sequence[int] = (), pool_draws: int | None = None) -> dict[str, Any]:
    """Score `checkpoints` (or, without checkpoints, the `predictions` tables) on `data`.

    Returns the JSON-ready summary: `pass@K` for every K computed, `exact_accuracy`,
    `token_accuracy`, for ARC `score` (task-averaged pass@2), for sudoku/maze `valid_accuracy`
    and `valid@K`, plus counts and per-source accuracies. `out` receives predictions.parquet
    (when a model ran and no `predictions` path was given), results.parquet (per task/puzzle)
    and metrics.json; `submission` the Kaggle JSON (ARC). `candidates` (default: one plain
    candidate per example) and `rank` (eval.vote.RANKERS) are the test-time compute protocol;
    with a model the summary adds `accuracy_by_segment`, and always `protocol`. `max_items` /
    `max_versions` score a seeded subset (eval/subset.py), recorded as the summary's `subset`
    (None: everything). `pool` (sizes N) adds `accuracy_by_pool`: pass@K when each item votes
    with only N of its versions (eval/pool.py; `pool_draws` seeded draws by `seed`), and with `out`
    its picture pool.png.
    """
    checkpoints = [Path(c) for c in checkpoints]
    tables = [Path(p) for p in predictions]
    if vote_k < 1:
        raise UsageError(f"--vote must be at least 1, got {vote_k}")
    if rank not in RANKERS:
        raise UsageError(f"--rank must be one of {', '.join(RANKERS)}, got {rank!r}")
    if candidates is not None and not checkpoints and candidates != CandidateSpec(seed=candidates.seed):
        raise UsageError("--samples/--noise/--restarts/--init-std/--steps/--halt make candidates with a model: "
                         "give --checkpoint (a predictions table holds answers already made)")
    candidates = candidates or CandidateSpec()
    if not checkpoints and not tables:
        raise UsageError("nothing to score: give --checkpoint CKPT (run a model) or --predictions FILE (score a table)")
    if checkpoints and len(tables) > 1:
        raise UsageError("with --checkpoint, --predictions names the one table to write; give it once")
    dataset = open_dataset(data)
    out = Path(out) if out is not None else None
    if submission is not None and dataset.task != "arc":
        raise HrmError(f"--submission writes the Kaggle ARC format; {dataset.path} is a {dataset.task} dataset")
    if out is not None:  # every output is checked before any model runs
        if out.exists() and not out.is_dir():
            raise HrmError(f"--out {out} is a file; give a folder for the eval outputs")
        check_output(out / RESULTS_FILE, RESULTS_OUTPUT, force=force)
        check_output(out / METRICS_FILE, METRICS_OUTPUT, force=force)
        if pool:
            check_output(out / POOL_PICTURE, PICTURE_OUTPUT, force=force)
    pool_draws = DEFAULT_DRAWS if pool_draws is None else pool_draws
    if pool_draws < 1:
        raise UsageError(f"--pool-draws must be at least 1, got {pool_draws}")
    if pool and not dataset.split(split).has_solutions:
        raise HrmError("--pool scores accuracy, and this split has no solutions (built with --no-solutions)")
    if pool and _versions_per_group(dataset, split) == 1:
        build = "--aug K" if dataset.task == "arc" else "--test-aug K"
        raise HrmError(f"--pool votes over the versions of each puzzle, and the {split} split of {dataset.path} has "
                       f"one version per puzzle: build it with `hrm build-data {dataset.task} ... {build}`")
    if submission is not None:
        check_output(submission, SUBMISSION_OUTPUT, force=force)
        if max_items is not None:
            raise UsageError("--submission needs an answer for every task; it cannot be combined with --max-items")
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
                scorer.restrict(choose_subset(scorer.split, scorer.frames, max_items, max_versions, seed))
                _log_subset(scorer)
            if not runner.is_main:  # other torchrun ranks only predict their slices
                for checkpoint in checkpoints:
                    for _ in runner.batches(checkpoint, dataset, split, batch_size, candidates, scorer.subset):
                        pass
                return {}
            made = _generators(candidates, checkpoints)
            scorer, earlier = _run_models(runner, checkpoints, dataset, split, batch_size, target, scorer,
                                          candidates=candidates, protocol=made)
        finally:
            runner.close()
        segments = len(earlier) + 1
    else:
        scorer, earlier, segments = Scorer(dataset, split, keep_grids=submission is not None), [], None
        if subsetting:
            scorer.restrict(choose_subset(scorer.split, scorer.frames, max_items, max_versions, seed))
            _log_subset(scorer)
        for table in tables:
            scorer.add_table(table)
        made = _table_generators(tables)
    result = scorer.result(vote_k, rank)
    summary = result.summary
    if checkpoints:
        summary["accuracy_by_segment"] = [s.result(1, rank).summary["pass@1"] for s in earlier] + [summary["pass@1"]]
    summary["protocol"] = _protocol(split, summary, made, rank, segments, scorer.versions_per_group())
    if pool:
        summary["accuracy_by_pool"] = scorer.pool_curve(pool, vote_k, rank, pool_draws, seed)
        summary["protocol"]["pool"] = {"sizes": list(pool), "draws": pool_draws, "seed": seed}
    if out is not None:
        _write_results(out, result, force)
        log(f"wrote per-task results to {out / RESULTS_FILE}")
        if pool:
            plot_pool_curve(summary["accuracy_by_pool"], out / POOL_PICTURE, title=f"{dataset.task} {split}: vote pool",
                            force=force)
            log(f"wrote the vote-pool curve to {out / POOL_PICTURE}")
    if submission is not None:
        write_submission(submission, build_submission(result), force=force)
        log(f"wrote the submission to {submission}")
    return result.summary


def _versions_per_group(dataset: Dataset, split: str) -> int:
    """The most versions (a puzzle and its augmented copies) any group of the split has."""
    data_split = dataset.split(split)
    counts = [np.diff(data_split.set(name).group_indices) for name in data_split.set_names]
    return int(max((c.max() for c in counts if len(c)), default=0))


def _log_subset(scorer: Scorer) -> None:
    subset = scorer.subset
    if subset is None:
        log("the subset options select the whole split: scoring everything")
        return
    versions = f", at most {plural(subset.max_versions, 'version')} each" if subset.max_versions else ""
    log(f"scoring a subset: {subset.items} of {subset.of_items} items{versions} "
        f"({subset.num_rows:,} examples, seed {subset.seed})")


def _generators(candidates: CandidateSpec, checkpoints: Sequence[Path]) -> dict[str, Any]:
    """How a model run made its candidates (stored in its predictions table's metadata too)."""
    return {"samples": {"K": candidates.samples, "noise": candidates.noise},
            "restarts": {"K": candidates.restarts, "init_std": candidates.init_std},
            "candidates_per_version": candidates.per_example, "steps": candidates.steps,
            "halt": candidates.halt, "seed": candidates.seed, "checkpoints": [str(c) for c in checkpoints]}


def _table_generators(tables: Sequence[Path]) -> dict[str, Any]:
    """What the tables' metadata says about how they were made (None where it says nothing)."""
    from hrm.eval.predictions import table_metadata

    made = [table_metadata(table).get("protocol") for table in tables]
    known = {json.dumps(m, sort_keys=True) for m in made}
    first = made[0] if len(known) == 1 and made[0] else {}
    return {"samples": first.get("samples"), "restarts": first.get("restarts"),
            "candidates_per_version": first.get("candidates_per_version"), "steps": first.get("steps"),
            "halt": first.get("halt"), "seed": first.get("seed"),
            "checkpoints": sorted({c for m in made if m for c in m.get("checkpoints", [])}) or None,
            "tables": [str(t) for t in tables]}


def _protocol(split: str, summary: dict[str, Any], made: dict[str, Any], rank: str, segments: int | None,
              versions_per_group: float) -> dict[str, Any]:
    """Everything a score depends on besides the weights: what was scored, how the candidates
    were made, how they were ranked. Published numbers differ mostly by this."""
    return {"split": split, "items": summary["test_inputs"], "groups": summary["groups"],
            "subset": summary.get("subset"), "predictions": summary["predictions"],
            "versions_per_group": versions_per_group, **made, "segments": segments, "ranker": rank}


def format_protocol(protocol: dict[str, Any]) -> str:
    """One line: the protocol as the readable table shows it."""
    parts = [f"{protocol['split']} split, {protocol['items']:,} items"
             + (_subset_text(protocol.get("subset")) or " (all)"),
             f"{protocol['versions_per_group']:.3g} version{'' if protocol['versions_per_group'] == 1 else 's'} "
             f"per puzzle"]
    samples, restarts = protocol.get("samples"), protocol.get("restarts")
    if samples:
        parts.append(f"samples K={samples['K']} noise={samples['noise']:g}")
    if restarts:
        parts.append(f"restarts K={restarts['K']} init_std={restarts['init_std']:g}")
    if protocol.get("segments"):
        parts.append(f"{protocol['segments']} segments" + (", halt on q" if protocol.get("halt") == "q" else ""))
    if protocol.get("seed") is not None and (samples or restarts):
        parts.append(f"seed {protocol['seed']}")
    checkpoints = protocol.get("checkpoints") or []
    if checkpoints:
        parts.append(f"{len(checkpoints)} checkpoint{'s' if len(checkpoints) > 1 else ''}")
    parts.append(f"ranker {protocol['ranker']}")
    return "protocol: " + "; ".join(parts)


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
        if "protocol" in summary:
            lines.append("  " + format_protocol(summary["protocol"]))
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
    if summary.get("accuracy_by_segment"):
        values = [f"{value:.1%}" for value in summary["accuracy_by_segment"]]
        if len(values) > 16:
            values = values[:8] + ["..."] + values[-8:]
        lines.append("  pass@1 by segment: " + " ".join(values))
    if summary.get("accuracy_by_pool"):
        lines.append(format_pool_curve(summary["accuracy_by_pool"], summary["protocol"]["pool"]["draws"]))
    if "protocol" in summary:
        lines.append("  " + format_protocol(summary["protocol"]))
    if len(summary["sources"]) > 1:
        lines.append("  per source (exact / token accuracy):")
        lines += [f"    {s['source']}: {s['exact_accuracy']:.2%} / {s['token_accuracy']:.2%}"
                  for s in summary["sources"]]
    return "\n".join(lines)


def _subset_text(subset: dict[str, Any] | None) -> str:
    if not subset:
        return ""
    versions = f", at most {plural(subset['max_versions'], 'version')} each" if subset["max_versions"] else ""
    return f" (a subset: {subset['items']:,} of {subset['of_items']:,}{versions}, seed {subset['seed']})"
