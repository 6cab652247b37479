"""ARC build benchmark (SPEC 7): ARC-1 settings with --aug 1000 against the reference approach.

Ours: `build_arc` end to end (read, check, augment, encode, compress, write), in a child process.
Baseline: a plain Python per-version loop as the reference builder does it - SHA-256 of every
grid for the dedup, per-example np.pad for translation + end markers, lists of rows, then
np.stack and np.save - run on every k-th task (it holds everything in memory) and extrapolated
by examples to the whole build. Each run is a child process reporting its own peak RSS.

    python benchmarks/bench_arc.py [--aug 1000] [--baseline-every 20] [--input DIR]

Prints one JSON line per measurement, then the ratios.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from _common import peak_rss_mb  # noqa: E402
from hrm.builders.inspect import directory_bytes  # noqa: E402

SUBSETS = ["training", "evaluation", "concept"]
TEST_SET = "evaluation"


def run_ours(args: argparse.Namespace) -> dict:
    from hrm.builders.arc import build_arc
    from hrm.common import set_quiet

    set_quiet(True)
    out = Path(tempfile.mkdtemp(prefix="bench_arc_")) / "arc1"
    started, cpu_started = time.perf_counter(), time.process_time()
    summary = build_arc(out, inputs=[args.input] if args.input else None, subsets=SUBSETS, test_set=TEST_SET,
                        aug=args.aug, seed=0)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    examples = summary["train_examples"] + summary["test_examples"]
    disk = directory_bytes(out)
    shutil.rmtree(out.parent)
    raw = examples * 900 * 2  # inputs + labels as uint8
    return {"what": "arc_build", "size": f"ARC-1 960 tasks aug {args.aug}", "examples": examples,
            "seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2), "items_per_s": round(examples / seconds),
            "items_per_cpu_s": round(examples / cpu_seconds), "peak_rss_mb": round(peak_rss_mb()),
            "disk_mb": round(disk / 2**20, 1), "raw_mb": round(raw / 2**20, 1), "disk_over_raw": round(disk / raw, 4),
            "shortfall_tasks": summary["shortfall_tasks"]}


# ----------------------------------------------------------------------------- the reference approach


def _grid_hash(grid: np.ndarray) -> str:
    return hashlib.sha256(bytes(grid.shape) + grid.tobytes()).hexdigest()


def _puzzle_hash(version: dict) -> str:
    hashes = sorted(f"{_grid_hash(a)}|{_grid_hash(b)}" for pairs in version.values() for a, b in pairs)
    return hashlib.sha256("|".join(hashes).encode()).hexdigest()


def _pad_example(inp: np.ndarray, out: np.ndarray, translate: bool, rng: np.random.Generator) -> list[np.ndarray]:
    if translate:
        row = rng.integers(0, 30 - max(inp.shape[0], out.shape[0]) + 1)
        col = rng.integers(0, 30 - max(inp.shape[1], out.shape[1]) + 1)
    else:
        row = col = 0
    canvases = []
    for grid in (inp, out):
        height, width = grid.shape
        canvas = np.pad(grid + 2, ((row, 30 - row - height), (col, 30 - col - width)), constant_values=0)
        if row + height < 30:
            canvas[row + height, col:col + width] = 1
        if col + width < 30:
            canvas[row:row + height, col + width] = 1
        canvases.append(canvas.ravel())
    return canvases


def baseline_build(tasks: list, aug: int, out: Path, seed: int = 0) -> int:
    from hrm.augment.dihedral import dihedral

    rng = np.random.default_rng(seed)
    rows = {"train": ([], []), "test": ([], [])}
    for task in tasks:
        version = {"train": list(task.train) + ([] if task.subset == TEST_SET else list(task.test)),
                   "test": list(task.test) if task.subset == TEST_SET else []}
        group, hashes = [version], {_puzzle_hash(version)}
        for _ in range(5 * aug):
            transform = int(rng.integers(0, 8))
            colour_map = np.concatenate([[0], rng.permutation(9) + 1]).astype(np.uint8)
            candidate = {dest: [(dihedral(colour_map[a], transform), dihedral(colour_map[b], transform))
                                for a, b in pairs] for dest, pairs in version.items()}
            digest = _puzzle_hash(candidate)
            if digest not in hashes:
                hashes.add(digest)
                group.append(candidate)
            if len(group) >= aug + 1:
                break
        for split in ("train", "test"):
            for candidate in group:
                pairs = candidate[split]
                if not pairs:
                    continue
                top_left = rng.integers(0, len(pairs))
                for index, (a, b) in enumerate(pairs):
                    canvas_in, canvas_out = _pad_example(a, b, split == "train" and index != top_left, rng)
                    rows[split][0].append(canvas_in)
                    rows[split][1].append(canvas_out)
    examples = 0
    for split, (inputs, labels) in rows.items():
        np.save(out / f"{split}__inputs.npy", np.stack(inputs))
        np.save(out / f"{split}__labels.npy", np.stack(labels))
        examples += len(inputs)
    return examples


def run_baseline(args: argparse.Namespace) -> dict:
    from hrm.builders.arc_checks import check_tasks
    from hrm.builders.arc_io import packaged_data, read_inputs

    if args.input:
        tasks = read_inputs([args.input], SUBSETS)
    else:
        with packaged_data() as folder:
            tasks = read_inputs([str(folder / "arc-agi")], SUBSETS)
    tasks, _ = check_tasks(tasks, TEST_SET)
    sample = tasks[::args.baseline_every]
    out = Path(tempfile.mkdtemp(prefix="bench_arc_base_"))
    started, cpu_started = time.perf_counter(), time.process_time()
    examples = baseline_build(sample, args.aug, out)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    shutil.rmtree(out)
    return {"what": "arc_build_baseline", "size": f"{len(sample)} of {len(tasks)} tasks aug {args.aug}",
            "examples": examples, "seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2),
            "items_per_s": round(examples / seconds), "items_per_cpu_s": round(examples / cpu_seconds),
            "peak_rss_mb": round(peak_rss_mb())}


def _child(kind: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--child", kind, "--aug", str(args.aug),
               "--baseline-every", str(args.baseline_every)] + (["--input", args.input] if args.input else [])
    result = subprocess.run(command, capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--aug", type=int, default=1000)
    parser.add_argument("--baseline-every", type=int, default=20, help="baseline on every k-th task")
    parser.add_argument("--input", default=None, help="ARC data (default: the packaged copy)")
    parser.add_argument("--child", choices=["ours", "baseline"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_ours(args) if args.child == "ours" else run_baseline(args)))
        return
    ours = _child("ours", args)
    print(json.dumps(ours), flush=True)
    baseline = _child("baseline", args)
    print(json.dumps(baseline), flush=True)
    extrapolated = ours["examples"] / baseline["items_per_s"]
    extrapolated_cpu = ours["examples"] / baseline["items_per_cpu_s"]
    print(json.dumps({"what": "arc_build_speedup", "size": ours["size"], "seconds": ours["seconds"],
                      "baseline_seconds_extrapolated": round(extrapolated, 1),
                      "items_per_s": ours["items_per_s"], "peak_rss_mb": ours["peak_rss_mb"],
                      "speedup": round(extrapolated / ours["seconds"], 1),
                      "cpu_speedup": round(extrapolated_cpu / ours["cpu_seconds"], 1),
                      "disk_over_raw": ours["disk_over_raw"]}))


if __name__ == "__main__":
    main()
