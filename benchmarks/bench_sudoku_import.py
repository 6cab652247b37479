"""Sudoku CSV import with augmentation (SPEC 7): 1000 puzzles x --aug 1000 = 1,001,000 examples.

    python benchmarks/bench_sudoku_import.py [--puzzles 1000] [--aug 1000] [--baseline-puzzles 20] [--rounds 3]

Writes a reference-layout CSV of generated puzzles to a temporary folder, then:
  * runs `hrm build-data sudoku --from-csv ...` in a subprocess (peak RSS of that process only),
    timing the whole command and the build itself (without interpreter start-up);
  * runs two plain per-example Python/NumPy loops on `--baseline-puzzles` puzzles and
    extrapolates their examples/s: the reference builder's approach (draw one transform, build
    the 81-cell index map in Python, gather board and solution, append, np.save at the end) and
    a tighter variant using fancy indexing;
  * compares the bytes on disk of the train split's inputs+labels to the raw uint8 size.
Import and baselines alternate for --rounds rounds; each ratio is taken within a round and the
median over rounds is reported. Prints one JSON line per measurement. Targets: >= 50x the
baseline's examples/s including process start-up, peak RSS < 1 GiB, and (SPEC) on disk <= 1/4
of raw - see benchmarks/README.md for why standard entropy coders stop near 0.32 on sudoku tokens.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hrm.builders.sudoku import generate_puzzles  # noqa: E402


def write_reference_csv(path: Path, puzzles: np.ndarray, solutions: np.ndarray) -> None:
    with open(path, "w") as f:
        f.write("source,question,answer,rating\n")
        for i, (p, s) in enumerate(zip(puzzles, solutions)):
            question = "".join(str(d) if d else "." for d in p)
            f.write(f"bench,{question},{''.join(map(str, s))},{i % 50}\n")


def draw_reference_transform(rng: np.random.Generator):
    """One transform drawn as the reference does: digit map, transpose flag, row and column perms."""
    digit_map = np.pad(rng.permutation(np.arange(1, 10)), (1, 0))
    transpose = rng.random() < 0.5
    row_perm = np.concatenate([b * 3 + rng.permutation(3) for b in rng.permutation(3)])
    col_perm = np.concatenate([s * 3 + rng.permutation(3) for s in rng.permutation(3)])
    return digit_map, transpose, row_perm, col_perm


def per_example_loop(puzzles: np.ndarray, solutions: np.ndarray, aug: int, out: Path,
                     python_index_map: bool) -> None:
    """Augment one example at a time, then stack and np.save. With `python_index_map`, as the
    reference builder: the 81-cell index map of each version is built by a Python list
    comprehension; otherwise (a stricter baseline) rows and columns are gathered by fancy indexing."""
    rng = np.random.default_rng(0)
    inputs, labels = [], []
    for puzzle, solution in zip(puzzles, solutions):
        board, answer = puzzle.reshape(9, 9), solution.reshape(9, 9)
        inputs.append(board)
        labels.append(answer)
        for _ in range(aug):
            digit_map, transpose, row_perm, col_perm = draw_reference_transform(rng)
            if python_index_map:
                cells = np.array([row_perm[i // 9] * 9 + col_perm[i % 9] for i in range(81)])
            for grid, rows in ((board, inputs), (answer, labels)):
                grid = grid.T if transpose else grid
                moved = grid.flatten()[cells].reshape(9, 9) if python_index_map else grid[row_perm][:, col_perm]
                rows.append(digit_map[moved])
    np.save(out / "inputs.npy", np.stack(inputs).reshape(len(inputs), 81).astype(np.uint8) + 1)
    np.save(out / "labels.npy", np.stack(labels).reshape(len(labels), 81).astype(np.uint8) + 1)


def directory_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run_import(command: list[str], env: dict[str, str]) -> tuple[float, float, float, float]:
    """(wall s incl. start-up, CPU s of the process, build s without start-up, peak RSS MiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, cpu, json.loads(result.stdout)["seconds"], after.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--puzzles", type=int, default=1000)
    parser.add_argument("--aug", type=int, default=1000)
    parser.add_argument("--baseline-puzzles", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of (import, baselines), interleaved so that load drift hits both")
    args = parser.parse_args()
    examples = args.puzzles * (args.aug + 1)
    count = min(args.baseline_puzzles, args.puzzles)
    baseline_size = count * (args.aug + 1)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_sudoku_") as tmp:
        tmp = Path(tmp)
        (tmp / "csv").mkdir()
        chunks = list(generate_puzzles(args.puzzles, seed=1, search_steps=5, easy_fraction=0.0))
        puzzles = np.concatenate([c[0] for c in chunks])
        solutions = np.concatenate([c[1] for c in chunks])
        write_reference_csv(tmp / "csv" / "train.csv", puzzles, solutions)
        write_reference_csv(tmp / "csv" / "test.csv", puzzles[:10], solutions[:10])

        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        hrm = [sys.executable, "-m", "hrm", "build-data", "sudoku", "--from-csv", str(tmp / "csv"), "--quiet"]
        # a tiny build first, so that numba's on-disk cache exists before the timed runs
        subprocess.run([*hrm, "--out", str(tmp / "warm"), "--train-size", "2", "--test-size", "1", "--aug", "1"],
                       env=env, check=True, capture_output=True)
        command = [*hrm, "--out", str(tmp / "out"), "--train-size", str(args.puzzles), "--test-size", "10",
                   "--aug", str(args.aug), "--json", "--force"]
        imports, baselines = [], {"reference-style": [], "tight NumPy": []}
        for _ in range(args.rounds):
            imports.append(run_import(command, env))
            for name, python_index_map in (("reference-style", True), ("tight NumPy", False)):
                start, start_cpu = time.perf_counter(), time.process_time()
                per_example_loop(puzzles[:count], solutions[:count], args.aug, tmp, python_index_map)
                baselines[name].append((time.perf_counter() - start, time.process_time() - start_cpu))

        train = tmp / "out" / "train" / "all"
        on_disk = directory_bytes(train / "inputs") + directory_bytes(train / "labels")
        raw = 2 * examples * 81
    load = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    median = statistics.median
    for name, runs in baselines.items():
        seconds, cpu_seconds = median(r[0] for r in runs), median(r[1] for r in runs)
        print(json.dumps({"what": f"sudoku import baseline: {name} per-example loop", "size": baseline_size,
                          "seconds": round(seconds, 3), "items_per_s": round(baseline_size / seconds),
                          "cpu_seconds": round(cpu_seconds, 3), "peak_rss_mb": None,
                          "extrapolated_seconds_for_size": round(examples * seconds / baseline_size, 1),
                          "rounds": len(runs), "load_1min": load}))
    ratios = {}
    for name, runs in baselines.items():
        short = name.split()[0].split("-")[0]
        # ratio per round (import and baseline measured back to back), then the median over rounds
        per_round = [(b[0] / baseline_size * examples, b[1] / baseline_size * examples, i) for b, i in zip(runs, imports)]
        ratios[f"speedup_vs_{short}"] = round(median(b / i[0] for b, _, i in per_round), 1)
        ratios[f"speedup_build_only_vs_{short}"] = round(median(b / i[2] for b, _, i in per_round), 1)
        # CPU seconds (all threads, start-up included) against the baseline's: load-independent
        # and conservative, since it gives no credit for using both cores
        ratios[f"speedup_cpu_vs_{short}"] = round(median(c / i[1] for _, c, i in per_round), 1)
        ratios[f"speedup_vs_{short}_per_round"] = [round(b / i[0], 1) for b, _, i in per_round]
    wall, cpu, build_seconds = (median(i[k] for i in imports) for k in range(3))
    print(json.dumps({"what": "sudoku import (hrm build-data sudoku --from-csv)", "size": examples,
                      "seconds": round(wall, 3), "build_seconds": build_seconds, "cpu_seconds": round(cpu, 3),
                      "items_per_s": round(examples / wall), "peak_rss_mb": round(max(i[3] for i in imports), 1),
                      "rounds": len(imports), "load_1min": load, **ratios}))
    print(json.dumps({"what": "sudoku import bytes on disk (train inputs+labels)", "size": examples,
                      "bytes_on_disk": on_disk, "bytes_raw_uint8": raw,
                      "ratio_to_raw": round(on_disk / raw, 4)}))


if __name__ == "__main__":
    main()
