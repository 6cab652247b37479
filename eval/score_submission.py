"""`hrm score-submission`: the ARC Prize score of a Kaggle submission against a solutions file.

Needs no model and no dataset, so it scores any tool's submission. Formats (Kaggle, ARC Prize):
- submission: `{task: [{"attempt_1": grid, "attempt_2": grid}, ...]}`, one entry per test input
  in the order of the challenge; a grid is a non-empty rectangular list of rows of ints 0-9;
- solutions: `{task: [grid, ...]}`, the true output of every test input.

A test output is solved when attempt_1 or attempt_2 equals it exactly. Two averages are in use:
- `score_by_output`: solved test outputs / all test outputs of the solutions file (the Kaggle
  competition's rule: every test output counts once);
- `score_by_task`: per task, the fraction of its test outputs solved, averaged over the tasks of
  the solutions file (the task-averaged pass@2 of the HRM/TRM evaluation and of `hrm eval`).
They differ only when tasks have several test outputs. A task missing from the submission counts
as unsolved and is named; a submission entry beyond a task's test outputs, and a task absent from
the solutions, are ignored (and counted). A malformed submission (not JSON, a task that is not a
list, an entry that is not an object of attempts, an attempt that is not a grid of ints 0-9) is
refused with one line naming the task, the test output and the attempt.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hrm.common import HrmError, log
from hrm.common.json_input import read_json

ATTEMPT_KEYS = ("attempt_1", "attempt_2")
MAX_SIDE = 30

Grid = tuple[tuple[int, ...], ...]


def _grid(value: Any, where: str) -> Grid:
    """`value` as a hashable grid, or HrmError saying why it is not a grid of ints 0-9."""
    what = f"{where} is not a grid of ints 0-9"
    if not isinstance(value, list) or not value:
        raise HrmError(f"{what} (not a non-empty list of rows)")
    if not all(isinstance(row, list) and row for row in value):
        raise HrmError(f"{what} (a row is not a non-empty list)")
    width = len(value[0])
    if any(len(row) != width for row in value):
        raise HrmError(f"{what} (rows of different lengths)")
    if len(value) > MAX_SIDE or width > MAX_SIDE:
        raise HrmError(f"{what} ({len(value)}x{width}; sides are at most {MAX_SIDE})")
    for r, row in enumerate(value):
        for c, cell in enumerate(row):
            if type(cell) is not int or not 0 <= cell <= 9:  # bool and float are not colours
                raise HrmError(f"{what} (row {r} column {c} holds {cell!r})")
    return tuple(tuple(row) for row in value)


def _read_object(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise HrmError(f"{what} {path} does not exist" if not path.exists() else f"{what} {path} is not a file")
    data = read_json(path)  # size-checked, plain/.gz/.xz, one line for bad JSON
    if not isinstance(data, dict):
        raise HrmError(f"{path}: not an ARC {what} (expected a JSON object keyed by task id)")
    return data


def load_submission(path: str | os.PathLike) -> dict[str, list[dict[str, Grid]]]:
    """{task: [{attempt key: grid}, ...]}, every entry validated (also tasks not in the solutions)."""
    path = Path(path)
    data = _read_object(path, "submission")
    submission: dict[str, list[dict[str, Grid]]] = {}
    for task, entries in data.items():
        if not isinstance(entries, list):
            raise HrmError(f"{path}: task {task} is not a list of test-output entries")
        parsed = []
        for index, entry in enumerate(entries):
            where = f"{path}: task {task} test output {index}"
            if not isinstance(entry, dict):
                raise HrmError(f"{where} is not an object of attempts ({{\"attempt_1\": grid, \"attempt_2\": grid}})")
            attempts = {key: _grid(entry[key], f"{where} {key}") for key in ATTEMPT_KEYS if key in entry}
            if not attempts:
                raise HrmError(f"{where} has neither attempt_1 nor attempt_2")
            parsed.append(attempts)
        submission[str(task)] = parsed
    return submission


def load_solutions(path: str | os.PathLike) -> dict[str, list[Grid]]:
    """{task: [grid, ...]} of a Kaggle solutions file."""
    path = Path(path)
    data = _read_object(path, "solutions file")
    solutions: dict[str, list[Grid]] = {}
    for task, outputs in data.items():
        if not isinstance(outputs, list) or not outputs:
            raise HrmError(f"{path}: task {task} is not a non-empty list of output grids")
        solutions[str(task)] = [_grid(grid, f"{path}: task {task} test output {k}") for k, grid in enumerate(outputs)]
    if not solutions:
        raise HrmError(f"{path}: the solutions file holds no task")
    return solutions


def score(submission: dict[str, list[dict[str, Grid]]], solutions: dict[str, list[Grid]]) -> dict[str, Any]:
    """Both ARC Prize averages and the counts behind them (see the module docstring)."""
    solved_outputs, task_scores, missing, per_task = 0, [], [], {}
    outputs = sum(len(truths) for truths in solutions.values())
    for task, truths in solutions.items():
        entries = submission.get(task)
        if entries is None:
            missing.append(task)
            entries = []
        solved = sum(1 for index, truth in enumerate(truths)
                     if index < len(entries) and truth in entries[index].values())
        solved_outputs += solved
        task_scores.append(solved / len(truths))
        per_task[task] = {"solved": solved, "test_outputs": len(truths)}
    return {
        "score_by_output": solved_outputs / outputs,
        "score_by_task": sum(task_scores) / len(task_scores),
        "tasks": len(solutions), "test_outputs": outputs, "solved_outputs": solved_outputs,
        "solved_tasks": sum(1 for value in task_scores if value == 1.0),
        "missing_tasks": missing,
        "extra_tasks": sorted(set(submission) - set(solutions)),
        "short_tasks": sorted(t for t in solutions if t in submission and len(submission[t]) < len(solutions[t])),
        "per_task": per_task,
    }


def score_submission(submission: str | os.PathLike, solutions: str | os.PathLike) -> dict[str, Any]:
    """Validate both files and score; the JSON-ready result of `hrm score-submission`."""
    truths = load_solutions(solutions)
    result = score(load_submission(submission), truths)
    if result["missing_tasks"]:
        shown = ", ".join(result["missing_tasks"][:10]) + (" ..." if len(result["missing_tasks"]) > 10 else "")
        log(f"warning: {len(result['missing_tasks'])} task(s) of the solutions are missing from the submission "
            f"(unsolved): {shown}")
    if result["extra_tasks"]:
        log(f"warning: {len(result['extra_tasks'])} task(s) of the submission are not in the solutions (ignored)")
    return {"submission": str(submission), "solutions": str(solutions), **result}


def format_score(result: dict[str, Any]) -> str:
    """The readable table `hrm score-submission` prints without --json."""
    lines = [f"{result['submission']} against {result['solutions']}: {result['tasks']} tasks, "
             f"{result['test_outputs']} test outputs",
             f"  score_by_output  {result['score_by_output']:7.2%}  ({result['solved_outputs']} of "
             f"{result['test_outputs']} test outputs solved by attempt_1 or attempt_2)",
             f"  score_by_task    {result['score_by_task']:7.2%}  (per task, the fraction of its test outputs "
             f"solved, averaged over {result['tasks']} tasks; {result['solved_tasks']} fully solved)"]
    if result["missing_tasks"]:
        lines.append(f"  missing from the submission (count as unsolved): {', '.join(result['missing_tasks'])}")
    if result["short_tasks"]:
        lines.append(f"  fewer entries than test outputs (the rest unsolved): {', '.join(result['short_tasks'])}")
    if result["extra_tasks"]:
        lines.append(f"  not in the solutions (ignored): {len(result['extra_tasks'])} task(s)")
    return "\n".join(lines)
