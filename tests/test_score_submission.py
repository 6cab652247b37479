"""`hrm score-submission` on hand-made submissions and solutions; the expected scores are worked
out by hand in each test (score_by_output = solved outputs / outputs, score_by_task = mean over
tasks of the fraction of the task's outputs solved)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from hrm.eval.score_submission import score_submission
from tests.conftest import assert_one_line_error, run_hrm

A, B, C, D = [[1]], [[2, 3]], [[4], [5]], [[0, 0], [0, 0]]
SOLUTIONS = {"t1": [A], "t2": [B], "t3": [C, A, B]}  # t3 has three test outputs


def _files(tmp_path: Path, submission, solutions=SOLUTIONS) -> tuple[Path, Path]:
    sub, sol = tmp_path / "submission.json", tmp_path / "solutions.json"
    sub.write_text(submission if isinstance(submission, str) else json.dumps(submission))
    sol.write_text(json.dumps(solutions))
    return sub, sol


def _entry(first, second):
    return {"attempt_1": first, "attempt_2": second}


def test_all_right(tmp_path):
    sub, sol = _files(tmp_path, {"t1": [_entry(A, D)], "t2": [_entry(B, B)], "t3": [_entry(C, D), _entry(A, A),
                                                                                      _entry(D, B)]})
    result = json.loads(run_hrm("score-submission", sub, "--solutions", sol, "--json", check=True).stdout)
    assert result["score_by_output"] == 1.0 and result["score_by_task"] == 1.0
    assert result["missing_tasks"] == [] and result["solved_outputs"] == 5 and result["test_outputs"] == 5


def test_first_or_second_attempt_counts_and_the_two_averages_differ(tmp_path):
    # t1: attempt_1 right; t2: only attempt_2 right; t3: 1 of 3 outputs (via attempt_2)
    sub, sol = _files(tmp_path, {"t1": [_entry(A, D)], "t2": [_entry(D, B)],
                                 "t3": [_entry(D, C), _entry(D, D), _entry(D, D)]})
    result = score_submission(sub, sol)
    assert result["solved_outputs"] == 3
    assert result["score_by_output"] == pytest.approx(3 / 5)
    assert result["score_by_task"] == pytest.approx((1 + 1 + 1 / 3) / 3)
    assert result["per_task"]["t3"] == {"solved": 1, "test_outputs": 3}


def test_wrong_attempts_score_zero(tmp_path):
    sub, sol = _files(tmp_path, {"t1": [_entry(D, D)], "t2": [_entry(A, [[3, 2]])],
                                 "t3": [_entry(D, D), _entry(D, D), _entry(D, D)]})
    result = score_submission(sub, sol)
    assert result["score_by_output"] == 0.0 and result["score_by_task"] == 0.0


def test_missing_task_is_unsolved_and_named(tmp_path):
    sub, sol = _files(tmp_path, {"t1": [_entry(A, A)], "t3": [_entry(C, C)], "other": [_entry(A, A)]})
    run = run_hrm("score-submission", sub, "--solutions", sol, "--json", check=True)
    result = json.loads(run.stdout)
    assert result["missing_tasks"] == ["t2"] and "t2" in run.stderr
    assert result["extra_tasks"] == ["other"] and result["short_tasks"] == ["t3"]
    assert result["score_by_output"] == pytest.approx(2 / 5)  # t1 and t3's first output
    assert result["score_by_task"] == pytest.approx((1 + 0 + 1 / 3) / 3)
    text = run_hrm("score-submission", sub, "--solutions", sol, check=True).stdout
    assert "score_by_output" in text and "40.00%" in text and "missing from the submission" in text and "t2" in text


@pytest.mark.parametrize("content, fragments", [
    ("{not json", ["malformed JSON"]),
    (json.dumps([1, 2]), ["JSON object keyed by task id"]),
    (json.dumps({"t1": {"attempt_1": A}}), ["task t1 is not a list"]),
    (json.dumps({"t1": [[[1]]]}), ["task t1 test output 0 is not an object of attempts"]),
    (json.dumps({"t1": [_entry(A, [[1, 10]])]}), ["task t1 test output 0 attempt_2", "ints 0-9", "10"]),
    (json.dumps({"t1": [_entry([[1], [2, 3]], A)]}), ["attempt_1", "rows of different lengths"]),
    (json.dumps({"t1": [_entry([[1.0]], A)]}), ["attempt_1", "not a grid of ints 0-9"]),
    (json.dumps({"t1": [_entry([], A)]}), ["attempt_1", "not a grid"]),
    (json.dumps({"t1": [_entry("[[1]]", A)]}), ["attempt_1", "not a grid"]),
    (json.dumps({"t1": [{"answer": A}]}), ["neither attempt_1 nor attempt_2"]),
])
def test_malformed_submission_is_one_line(tmp_path, content, fragments):
    sub, sol = _files(tmp_path, content)
    result = run_hrm("score-submission", sub, "--solutions", sol)
    assert result.returncode == 1
    assert_one_line_error(result, "submission.json", *fragments)


def test_missing_files_are_one_line(tmp_path):
    sub, sol = _files(tmp_path, {"t1": [_entry(A, A)]})
    assert_one_line_error(run_hrm("score-submission", tmp_path / "nope.json", "--solutions", sol), "nope.json",
                          "does not exist")
    assert_one_line_error(run_hrm("score-submission", sub, "--solutions", tmp_path / "nope.json"), "nope.json",
                          "does not exist")
