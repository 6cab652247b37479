"""`hrm build-data sudoku` as a user runs it: outputs, exit codes, one-line errors, atomicity."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from hrm.builders.dataset import open_dataset
from tests.conftest import REPO, assert_one_line_error, run_hrm
from tests.test_sudoku_build import _arrays, csv_with_bad_row

SMALL = ("--box", "2", "--train-size", "6", "--test-size", "3", "--aug", "5")


def test_json_summary_and_dataset(tmp_path):
    result = run_hrm("build-data", "sudoku", "--out", tmp_path / "d", *SMALL, "--test-aug", "2", "--json",
                     check=True)
    summary = json.loads(result.stdout)  # exactly one JSON object
    assert summary["splits"]["train"]["examples"] == 36 and summary["splits"]["test"]["examples"] == 9
    assert "histogram" in result.stderr  # the rating distribution is logged
    assert open_dataset(tmp_path / "d").split("test").set().num_puzzles == 9
    plain = run_hrm("build-data", "sudoku", "--out", tmp_path / "e", *SMALL, "--quiet", check=True)
    assert plain.stdout.startswith(f"wrote {tmp_path / 'e'}: train 6 puzzles") and plain.stderr == ""


@pytest.mark.parametrize("args,code,fragments", [
    (("--box", "4"), 2, ("--box must be 2",)),                     # usage: a value out of range
    (("--train-size", "0"), 2, ("--train-size must be at least 1",)),
    (("--aug", "-1"), 2, ("--aug must be >= 0",)),
    (("--from-csv", "nowhere"), 1, ("nowhere", "train.csv not found")),  # bad input
    (("--box", "2", "--blanks", "13"), 2, ("--blanks must be between 1 and 12",)),
])
def test_bad_arguments_give_one_line(tmp_path, args, code, fragments):
    result = run_hrm("build-data", "sudoku", "--out", tmp_path / "d", *args)
    assert result.returncode == code
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "d").exists()


def test_unparsable_option_is_a_usage_error(tmp_path):
    result = run_hrm("build-data", "sudoku", "--out", tmp_path / "d", "--train-size", "many")
    assert result.returncode == 2 and "--train-size" in result.stderr and "Traceback" not in result.stderr


def test_existing_output_needs_force(tmp_path):
    run_hrm("build-data", "sudoku", "--out", tmp_path / "d", *SMALL, check=True)
    assert_one_line_error(run_hrm("build-data", "sudoku", "--out", tmp_path / "d", *SMALL),
                          "already exists", "--force")
    run_hrm("build-data", "sudoku", "--out", tmp_path / "d", *SMALL, "--seed", "3", "--force", check=True)
    assert open_dataset(tmp_path / "d").attrs["seed"] == 3


@pytest.mark.parametrize("case", [0, 2, 3])  # malformed, contradicting answer, two solutions
def test_bad_csv_row_is_one_line_naming_the_line(tmp_path, case):
    fragment = csv_with_bad_row(tmp_path / "csv", case, count=5)
    result = run_hrm("build-data", "sudoku", "--out", tmp_path / "d", "--from-csv", tmp_path / "csv",
                     "--aug", "1")
    assert result.returncode == 1
    assert_one_line_error(result, "train.csv:5:", fragment, "--skip-invalid")
    assert not (tmp_path / "d").exists()
    if case != 3:
        return  # the library tests cover --skip-invalid for every kind of bad row
    skipped = run_hrm("build-data", "sudoku", "--out", tmp_path / "d", "--from-csv", tmp_path / "csv",
                      "--aug", "1", "--skip-invalid", "--json", check=True)
    assert json.loads(skipped.stdout)["splits"]["train"]["skipped_rows"] == 1
    assert "line 5" in skipped.stderr


def test_interrupted_build_leaves_no_dataset(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = tmp_path / "d"
    # 9x9: 100000 hard puzzles take far longer than the test waits, and the build cannot end on
    # its own first (4x4 with that many train puzzles fails to draw distinct test puzzles, and
    # that error raced the interrupt)
    process = subprocess.Popen([sys.executable, "-m", "hrm", "build-data", "sudoku", "--out", str(out),
                                "--box", "3", "--train-size", "100000", "--test-size", "10", "--aug", "10",
                                "--quiet"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any(p.name.startswith(".d.partial") for p in tmp_path.iterdir()):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.2)
        time.sleep(1.0)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130 and "Traceback" not in stderr
    # one line says so, even with --quiet (an error is not a log line)
    assert stderr.splitlines() == [f"error: interrupted: nothing written to {out}"], stderr
    assert list(tmp_path.iterdir()) == []  # neither the dataset nor its temporary sibling


def test_same_bytes_with_one_thread(tmp_path, monkeypatch):
    args = ("--box", "2", "--train-size", "40", "--test-size", "10", "--aug", "30", "--test-aug", "2")
    run_hrm("build-data", "sudoku", "--out", tmp_path / "two", *args, check=True)
    monkeypatch.setenv("NUMBA_NUM_THREADS", "1")
    run_hrm("build-data", "sudoku", "--out", tmp_path / "one", *args, check=True)
    one, two = _arrays(tmp_path / "one"), _arrays(tmp_path / "two")
    assert one.keys() == two.keys() and all(np.array_equal(one[k], two[k]) for k in one)
