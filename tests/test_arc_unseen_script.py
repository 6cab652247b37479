"""examples/arc_unseen.sh (issue 12's done-when): pretrain -> solution-free build -> test-time
training from the pretrained run -> submission -> `hrm score-submission` against the withheld
solutions, whose JSON is the script's last line. The fast test runs the script itself on the
fixtures at a tiny size; the slow one runs its default small size on the packaged ARC-AGI-1."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hrm.builders.dataset import open_dataset
from tests.conftest import REPO

SCRIPT = REPO / "examples" / "arc_unseen.sh"


def _run(out: Path, **env: str) -> dict:
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHON": sys.executable, **env}
    result = subprocess.run(["bash", SCRIPT, out], capture_output=True, text=True, env=environment,
                            timeout=3600)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    return json.loads(lines[-1])


def _hand_score(submission: dict, solutions: dict) -> tuple[float, float]:
    per_task = []
    for task, truths in solutions.items():
        entries = submission.get(task, [])
        per_task.append([k < len(entries) and truth in (entries[k]["attempt_1"], entries[k]["attempt_2"])
                         for k, truth in enumerate(truths)])
    by_output = sum(map(sum, per_task)) / sum(map(len, per_task))
    by_task = sum(sum(solved) / len(solved) for solved in per_task) / len(per_task)
    return by_output, by_task


def _check(out: Path, result: dict, solutions: dict) -> None:
    # the submission was made without the solutions: the unseen folder holds challenges only,
    # and the test-time-training dataset records that it has none
    assert sorted(p.name for p in (out / "source" / "unseen").iterdir()) == ["arc_evaluation_challenges.json"]
    ttt = open_dataset(out / "ttt_data")
    assert ttt.split("test").has_solutions is False and ttt.attrs["builder"]["no_solutions"] is True
    withheld = json.loads((out / "source" / "withheld" / "arc_evaluation_solutions.json").read_text())
    assert withheld == solutions
    submission = json.loads((out / "submission.json").read_text())
    challenges = json.loads((out / "source" / "unseen" / "arc_evaluation_challenges.json").read_text())
    assert {t: len(v) for t, v in submission.items()} == {t: len(v["test"]) for t, v in challenges.items()}
    by_output, by_task = _hand_score(submission, solutions)
    assert result["score_by_output"] == pytest.approx(by_output)
    assert result["score_by_task"] == pytest.approx(by_task)
    assert result["tasks"] == len(solutions) and result["missing_tasks"] == []
    # the test-time training started from the pretrained run, rows matched by name
    log = (out / "ttt_log.txt").read_text()
    assert "rows matched by identifier name" in log and "puzzle-embedding table:" in log
    assert json.loads((out / "eval_result.json").read_text())["scored"] is False


def test_pipeline_on_fixtures(tmp_path):
    fixtures = REPO / "tests" / "fixtures" / "arc" / "kaggle"
    result = _run(tmp_path, ARC_UNSEEN_SOURCE=str(fixtures), ARC_UNSEEN_PREFIX="fx", ARC_UNSEEN_TASKS="0",
                  ARC_UNSEEN_AUG="2", ARC_UNSEEN_PRETRAIN_EPOCHS="4", ARC_UNSEEN_TTT_EPOCHS="4")
    _check(tmp_path, result, json.loads((fixtures / "fx_evaluation_solutions.json").read_text()))


@pytest.mark.slow
def test_pipeline_at_its_small_size(tmp_path):
    from hrm.builders.arc_io import packaged_data
    from hrm.common.json_input import read_json

    result = _run(tmp_path)
    with packaged_data() as folder:
        solutions = read_json(folder / "arc-agi_evaluation_solutions.json.xz")
    first = sorted(solutions)[:8]
    _check(tmp_path, result, {task: solutions[task] for task in first})
