"""CPU threads for training: `hrm train --threads N` on a quiet machine and beside one busy process.

Each measurement is a fresh `hrm train` process on the smoke data and preset (examples/smoke.yaml,
4x4 sudoku) for --steps steps; its training time is the `time` of the run's last train record in
metrics.jsonl (the loop's own clock: start-up and the final evaluation excluded). The neighbour is
one process spinning on a core (what another user's job, or another helper's test run, does).
Settings are interleaved round by round, so that drifts of a shared machine's load fall on all of
them alike; the load average is printed with every line. One JSON line per measurement, then one
summary line per setting (median seconds and the ratio to one thread without a neighbour).

    python benchmarks/bench_threads.py [--steps 60] [--rounds 2] [--threads 1 2]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SPIN = "while True: pass"


def build_data(folder: Path) -> Path:
    from hrm.builders.sudoku import build_sudoku

    data = folder / "s4"
    build_sudoku(data, box=2, blanks=8, train_size=600, test_size=100, aug=31, seed=0)
    return data


def train_seconds(data: Path, run: Path, threads: int, steps: int) -> float:
    env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}  # --threads decides
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    args = [sys.executable, "-m", "hrm", "train", "--data", str(data), "--out", str(run), "--force", "--quiet",
            "--json", "--config", str(REPO / "examples" / "smoke.yaml"), "--threads", str(threads),
            "--device", "cpu", f"max_steps={steps}", "eval_interval=100000", "log_interval=10"]
    subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if r["split"] == "train"][-1]["time"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    seconds: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        data = build_data(Path(folder))
        for round_index in range(args.rounds):
            for neighbour in ("quiet", "one busy neighbour"):
                spinner = (subprocess.Popen([sys.executable, "-c", SPIN]) if neighbour != "quiet" else None)
                try:
                    time.sleep(0.5 if spinner else 0.0)
                    for threads in args.threads:
                        took = train_seconds(data, Path(folder) / "run", threads, args.steps)
                        seconds.setdefault((neighbour, threads), []).append(took)
                        emit(what="train smoke preset", case=neighbour, threads=threads, round=round_index,
                             steps=args.steps, seconds=round(took, 2), steps_per_s=round(args.steps / took, 2),
                             load_1min=round(os.getloadavg()[0], 2))
                finally:
                    if spinner:
                        spinner.kill()
                        spinner.wait()
    base = statistics.median(seconds[("quiet", min(args.threads))])
    for (neighbour, threads), values in seconds.items():
        median = statistics.median(values)
        emit(what="summary", case=neighbour, threads=threads, steps=args.steps, median_seconds=round(median, 2),
             ratio_to_quiet_1_thread=round(median / base, 2), runs=len(values))


if __name__ == "__main__":
    main()
