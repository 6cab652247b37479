"""The learning ladder (examples/ladder.sh, examples/ladder_*.yaml) and the ablation scripts
(examples/ablations/): each rung's data is what its description says (checked with the tests'
brute-force sudoku solver and the maze tests' BFS and path enumeration), its preset trains, and
an ablation runs end to end into `hrm compare`.
The calibration itself (3 seeds to the end) is a benchmark: benchmarks/README.md, Learning ladder."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from hrm.builders.dataset import open_dataset
from tests.conftest import REPO
from tests.sudoku_oracle import count_solutions
from tests.test_maze import GOAL, START, WALL, brute_force_count, check_maze, grids


def _script(*args, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
                   **(env or {})}
    return subprocess.run(["bash", *map(str, args)], capture_output=True, text=True, env=environment,
                          timeout=timeout)


@pytest.fixture(scope="module")
def rung_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("ladder") / "data"
    result = _script(REPO / "examples" / "ladder.sh", "data", "sudoku4", out)
    assert result.returncode == 0, result.stderr
    return open_dataset(out)


def test_sudoku4_rung_is_what_it_says(rung_data):
    train, test = rung_data.split("train"), rung_data.split("test")
    train_set, test_set = train.set(), test.set()
    assert len(train_set.group_indices) - 1 == 50 and train_set.num_examples == 50 * 4
    assert test_set.num_examples == 300
    inputs, labels = test_set.rows(0, 300)
    digits = inputs.astype(np.int64) - 1  # SPEC 3: token = digit + 1, blank = token 1
    assert ((digits == 0).sum(axis=1) == 9).all()
    for row in range(300):  # unique solution, equal to the label
        count, solution = count_solutions(digits[row].tolist(), 4)
        assert count == 1 and solution == (labels[row].astype(np.int64) - 1).tolist()
    train_inputs, _ = train_set.rows(0, train_set.num_examples)
    assert not set(map(bytes, inputs)) & set(map(bytes, train_inputs))  # no test puzzle among the train versions


def test_sudoku9_rung_is_what_it_says(tmp_path):
    result = _script(REPO / "examples" / "ladder.sh", "data", "sudoku9", tmp_path / "data")
    assert result.returncode == 0, result.stderr
    dataset = open_dataset(tmp_path / "data")
    train_set, test_set = dataset.split("train").set(), dataset.split("test").set()
    assert len(train_set.group_indices) - 1 == 1000 and train_set.num_examples == 1000 * 101
    assert test_set.num_examples == 500
    inputs, labels = test_set.rows(0, 500)
    digits = inputs.astype(np.int64) - 1
    assert ((digits == 0).sum(axis=1) == 32).all()
    for row in range(0, 500, 5):  # every fifth: unique solution, equal to the label
        count, solution = count_solutions(digits[row].tolist(), 9)
        assert count == 1 and solution == (labels[row].astype(np.int64) - 1).tolist()
    train_inputs, _ = train_set.rows(0, train_set.num_examples)
    assert not set(map(bytes, inputs)) & set(map(bytes, train_inputs))


@pytest.mark.parametrize("rung, test_count, config_lines", [
    ("sudoku4", 300, ["arch:\n  name: hrm", "pos_encodings: learned"]),
    ("maze6", 300, ["arch:\n  name: hrm", "pos_encodings: rope", "halt_max_steps: 1"]),
    ("sudoku9", 500, ["arch:\n  name: hrm", "mlp_t: true", "halt_max_steps: 1"]),
])
def test_rung_preset_trains(tmp_path, rung, test_count, config_lines):
    result = _script(REPO / "examples" / "ladder.sh", "train", rung, tmp_path, "max_steps=3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    final = json.loads(lines[0])
    assert final["step"] == 3 and final["split"] == "test" and final["count"] == test_count
    config = (tmp_path / "run" / "config.yaml").read_text()
    assert all(line in config for line in config_lines)


def test_maze6_rung_is_what_it_says(tmp_path):
    """Every test maze's label is a shortest path (BFS) and the only one (every path of that length
    enumerated), as the preset's comment relies on; no test maze is a train version."""
    result = _script(REPO / "examples" / "ladder.sh", "data", "maze6", tmp_path / "data")
    assert result.returncode == 0, result.stderr
    dataset = open_dataset(tmp_path / "data")
    train_set, test_set = dataset.split("train").set(), dataset.split("test").set()
    assert len(train_set.group_indices) - 1 == 1000 and train_set.num_examples == 8000
    assert test_set.num_examples == 300
    inputs, labels = grids(test_set, 6)
    for maze, label in zip(inputs, labels):
        length = check_maze(maze, label, min_path=6)
        start, goal = (tuple(np.argwhere(maze == token)[0]) for token in (START, GOAL))
        assert brute_force_count(maze != WALL, start, goal, length) == 1
    train_inputs, _ = train_set.rows(0, train_set.num_examples)
    assert not set(map(bytes, inputs.reshape(300, 36))) & set(map(bytes, train_inputs))


def test_unknown_rung_is_one_line(tmp_path):
    result = _script(REPO / "examples" / "ladder.sh", "data", "sudoku7", tmp_path / "d")
    assert result.returncode == 2 and result.stderr.strip().splitlines() == ["error: unknown rung 'sudoku7' (known: sudoku4, maze6, sudoku9)"]
    assert not (tmp_path / "d").exists()


def test_an_ablation_runs_end_to_end_into_compare_and_the_pool(tmp_path):
    # cycles.sh on a 1 x 1 grid, one seed, 2 steps per run (TRAIN_ARGS), then pool.sh on its run: the
    # scripts' glue (training, not retraining a finished run, hrm compare --mean-over, hrm eval --pool).
    env = {"SEEDS": "0", "CYCLES": "1", "TRAIN_ARGS": "max_steps=2"}
    result = _script(REPO / "examples" / "ablations" / "cycles.sh", tmp_path / "grid", env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "grid" / "compare.json").read_text())
    assert [run["steps"] for run in summary["runs"]] == [2] and summary["grouped"]["groups"][0]["runs"]
    assert (tmp_path / "grid" / "compare" / "curves.png").is_file()
    config = (tmp_path / "grid" / "runs" / "H1_L1_s0" / "config.yaml").read_text()
    assert "H_cycles: 1" in config and "L_cycles: 1" in config
    again = _script(REPO / "examples" / "ablations" / "cycles.sh", tmp_path / "grid", env=env)
    assert again.returncode == 0 and "H1_L1_s0: " not in again.stdout  # a finished run is not trained again
    pool = _script(REPO / "examples" / "ablations" / "pool.sh", tmp_path / "pool", tmp_path / "grid" / "runs" / "H1_L1_s0",
                   env={"POOL": "1,8"})
    assert pool.returncode == 0, pool.stderr
    curve = json.loads((tmp_path / "pool" / "H1_L1_s0.json").read_text())["accuracy_by_pool"]
    assert list(curve) == ["1", "8"] and all(entry["exact"] for entry in curve.values())


@pytest.mark.slow
def test_the_architecture_ablation_runs_end_to_end(tmp_path):
    # arch.sh's overrides make valid TRM and transformer configs; one seed, 2 steps per run.
    result = _script(REPO / "examples" / "ablations" / "arch.sh", tmp_path / "arch",
                     env={"SEEDS": "0", "TRAIN_ARGS": "max_steps=2"})
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "arch" / "compare.json").read_text())
    assert summary["differing_keys"][:4] == ["arch.name", "arch.bptt", "arch.H_layers", "arch.L_layers"]
    assert [(g["config"]["arch.name"], g["config"]["arch.bptt"]) for g in summary["grouped"]["groups"]] == \
        [("hrm", "all"), ("hrm", 1), ("transformer", 1), ("trm", 1)]  # runs/* in name order: hrm_bpttall, hrm, ...


@pytest.mark.slow
def test_the_gradient_depth_ablation_runs_end_to_end(tmp_path):
    # grad.sh: HRM at bptt 1, 2, all; TRM at 1, all; a depth curriculum, and the fixed depth with its
    # epochs scaled to the curriculum's wall time; one seed, 2 steps per run.
    result = _script(REPO / "examples" / "ablations" / "grad.sh", tmp_path / "grad",
                     env={"SEEDS": "0", "TRAIN_ARGS": "max_steps=2"}, timeout=1800)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "grad" / "compare.json").read_text())
    settings = {(g["config"]["arch.name"], str(g["config"]["arch.bptt"]), str(g["config"]["arch.H_cycles"]),
                 g["config"]["epochs"]) for g in summary["grouped"]["groups"]}
    final_time = lambda run: json.loads((tmp_path / "grad" / "runs" / f"{run}.json").read_text())["time"]  # noqa: E731
    equal_time_epochs = max(1, round(3000 * final_time("hrm_curriculum_s0") / final_time("hrm_bptt1_s0")))
    assert settings == {("hrm", "1", "2", 3000), ("hrm", "2", "2", 3000), ("hrm", "all", "2", 3000),
                        ("trm", "1", "2", 3000), ("trm", "all", "2", 3000), ("hrm", "1", "[[0, 1], [0.5, 2]]", 3000),
                        ("hrm", "1", "2", equal_time_epochs)}
    assert all(run["peak_memory"] > 0 for run in summary["runs"])


@pytest.mark.slow
def test_the_gradient_depth_ablation_without_the_schedule_runs(tmp_path):
    # SCHEDULE=none (as run on maze6): the five gradient depths only, no curriculum or equal-time runs.
    result = _script(REPO / "examples" / "ablations" / "grad.sh", tmp_path / "grad", "maze6",
                     env={"SEEDS": "0", "SCHEDULE": "none", "TRAIN_ARGS": "max_steps=2"}, timeout=1800)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "grad" / "compare.json").read_text())
    settings = {(g["config"]["arch.name"], str(g["config"]["arch.bptt"])) for g in summary["grouped"]["groups"]}
    assert settings == {("hrm", "1"), ("hrm", "2"), ("hrm", "all"), ("trm", "1"), ("trm", "all")}
    assert sorted(path.name for path in (tmp_path / "grad" / "runs").glob("*.json")) == \
        [f"{run}_s0.json" for run in ("hrm_bptt1", "hrm_bptt2", "hrm_bpttall", "trm_bptt1", "trm_bpttall")]
