"""Scoring speed (SPEC 7): ARC evaluation-sized voting, 400 tasks x 1000 versions (~0.4M
predictions, synthetic), through `eval.run.evaluate` exactly as `hrm eval --predictions` runs
it: Parquet read, label reads from zarr, crop + inverse transforms, voting, pass@K, per-task
results and the Kaggle submission. Baseline: the per-prediction Python/NumPy loop (crop with
hrm.show.render.arc_grid_from_tokens, augment inverses, a dict of grid bytes), timed on a
slice and scaled.

    python benchmarks/bench_vote.py [--tasks 400] [--versions 1000]
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hrm.augment.colour import inverse_colour_map  # noqa: E402
from hrm.augment.dihedral import dihedral, inverse_dihedral  # noqa: E402
from hrm.builders.dataset import DatasetWriter, atomic_directory, open_dataset  # noqa: E402
from hrm.show.render import arc_grid_from_tokens  # noqa: E402
from hrm.eval.predictions import PredictionWriter  # noqa: E402
from hrm.common import set_quiet  # noqa: E402
from hrm.eval.run import evaluate  # noqa: E402

SIDE = 30


def _canvases(grids: np.ndarray) -> np.ndarray:
    """[V, h, w] colour grids -> [V, 900] tokens (grid + 2 at the top-left, end markers)."""
    v, h, w = grids.shape
    canvas = np.zeros((v, SIDE, SIDE), np.uint8)
    canvas[:, :h, :w] = grids + 2
    if h < SIDE:
        canvas[:, h, :w] = 1
    if w < SIDE:
        canvas[:, :h, w] = 1
    return canvas.reshape(v, -1)


def _versions(grid: np.ndarray, dihedral_ids: np.ndarray, maps: np.ndarray) -> list[np.ndarray]:
    coloured = maps[:, grid]  # [V, h, w]
    out = np.zeros((len(maps), SIDE * SIDE), np.uint8)
    for t in range(8):
        rows = np.flatnonzero(dihedral_ids == t)
        if len(rows):
            out[rows] = _canvases(np.moveaxis(dihedral(np.moveaxis(coloured[rows], 0, -1), t), -1, 0))
    return out


def build(root: Path, tasks: int, versions: int, seed: int = 0) -> Path:
    """A synthetic ARC test split and a predictions table (60% of versions right)."""
    rng = np.random.default_rng(seed)
    data, table = root / "arc", root / "predictions.parquet"
    pairs_per_task = 1 + (rng.random(tasks) < 0.05)  # ARC evaluation: 419 test pairs in 400 tasks
    signature = {"task": "arc", "split": "test", "seq_len": SIDE * SIDE,
                 "sets": {"all": int(pairs_per_task.sum()) * versions}}
    with atomic_directory(data) as tmp, PredictionWriter(table, seq_len=SIDE * SIDE, signature=signature) as out:
        writer = DatasetWriter(tmp, task="arc", seed=seed, builder={"synthetic": True})
        split = writer.split("test", seq_len=SIDE * SIDE, vocab_size=12)
        row = 0
        for t, pairs in enumerate(pairs_per_task.tolist()):
            dihedral_ids = np.concatenate([[0], rng.integers(0, 8, versions - 1)]).astype(np.uint8)
            maps = np.stack([np.arange(10)] + [np.concatenate([[0], rng.permutation(9) + 1])
                                               for _ in range(versions - 1)]).astype(np.uint8)
            labels = np.zeros((versions, pairs, SIDE * SIDE), np.uint8)
            preds = np.zeros_like(labels)
            for p in range(pairs):
                truth = rng.integers(0, 10, size=rng.integers(3, 21, size=2)).astype(np.uint8)
                labels[:, p] = _versions(truth, dihedral_ids, maps)
                preds[:, p] = labels[:, p]
                choice = rng.random(versions)
                for k in range(3):  # 40% of versions: one of three wrong answers
                    wrong = truth.copy()
                    wrong[k, 0] = (wrong[k, 0] + 1) % 10
                    pick = np.flatnonzero((choice >= 0.6 + 0.1 * k) & (choice < 0.7 + 0.1 * k + 0.1 * (k == 2)))
                    if len(pick):
                        preds[pick, p] = _versions(wrong, dihedral_ids[pick], maps[pick])
            names = [f"{t:08x}"] + [f"{t:08x}_t{d}_{''.join(map(str, m))}" for d, m in zip(dihedral_ids[1:], maps[1:])]
            ids = writer.add_identifiers(names)
            flat = labels.reshape(-1, SIDE * SIDE)
            split.set("all").append(flat, flat, examples_per_puzzle=[pairs] * versions, puzzles_per_group=[versions],
                                    puzzle_identifiers=ids, puzzle_fields={"aug_dihedral": dihedral_ids,
                                                                           "aug_colour_map": maps})
            out.write("all", np.arange(row, row + len(flat)), preds.reshape(-1, SIDE * SIDE),
                      rng.normal(size=len(flat)).astype(np.float32))
            row += len(flat)
        writer.close()
    return data


def baseline_seconds(data: Path, limit: int) -> tuple[float, int]:
    """The per-prediction Python loop over the first `limit` rows (labels as predictions)."""
    puzzle_set = open_dataset(data).split("test").set("all")
    rows = min(limit, puzzle_set.num_examples)
    tokens = puzzle_set.labels[:rows]
    puzzle = np.searchsorted(puzzle_set.puzzle_indices, np.arange(rows), side="right") - 1
    dihedral_ids, maps = puzzle_set.field("aug_dihedral"), puzzle_set.field("aug_colour_map")
    start = time.perf_counter()
    votes: dict[int, Counter] = {}
    for n in range(rows):
        p = puzzle[n]
        grid = inverse_colour_map(maps[p])[inverse_dihedral(arc_grid_from_tokens(tokens[n]), int(dihedral_ids[p]))]
        votes.setdefault(int(p // 1000), Counter())[grid.tobytes() + bytes(grid.shape)] += 1
    return time.perf_counter() - start, rows


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # all threads of the process
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=400)
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--baseline-rows", type=int, default=20000)
    args = parser.parse_args()
    set_quiet(True)
    root = Path(tempfile.mkdtemp(prefix="bench_vote_"))
    try:
        warm = build(root / "warm", 2, 8)  # compile / load the numba kernels outside the timing
        evaluate([], warm, predictions=[root / "warm" / "predictions.parquet"], vote_k=2,
                 submission=root / "warm" / "s.json")
        t0 = time.perf_counter()
        data = build(root / "big", args.tasks, args.versions)
        build_seconds = time.perf_counter() - t0
        t0, cpu0 = time.perf_counter(), _cpu_seconds()
        summary = evaluate([], data, predictions=[root / "big" / "predictions.parquet"], vote_k=2,
                           out=root / "big" / "out", submission=root / "big" / "submission.json")
        seconds, cpu_seconds = time.perf_counter() - t0, _cpu_seconds() - cpu0
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        n = summary["predictions"]
        base_seconds, base_rows = baseline_seconds(data, args.baseline_rows)
        base_rate = base_rows / base_seconds
        print(json.dumps({"what": "score ARC predictions (read, crop+inverse, vote, pass@K, submission)",
                          "size": f"{args.tasks} tasks x {args.versions} versions = {n} predictions",
                          "seconds": round(seconds, 2), "items_per_s": round(n / seconds),
                          "cpu_seconds": round(cpu_seconds, 2), "items_per_cpu_s": round(n / cpu_seconds),
                          "peak_rss_mb": round(peak_mb), "baseline_python_loop_items_per_s": round(base_rate),
                          "speedup_vs_python_loop": round(n / seconds / base_rate, 1),
                          "score": summary["score"], "setup_seconds": round(build_seconds, 1)}))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
