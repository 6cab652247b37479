"""`hrm score-submission`: score a Kaggle ARC submission against a solutions file."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from hrm.common import set_quiet
from hrm.cli.options import Json, Quiet

EXAMPLE = ("Example: hrm score-submission runs/ttt/submission.json --solutions "
           "data/withheld/arc-agi_evaluation_solutions.json --json")


def score_submission_command(
    submission: Annotated[Path, typer.Argument(
        metavar="SUBMISSION", help="Submission JSON ({task: [{attempt_1, attempt_2}, ...]}), from hrm eval "
                                   "--submission or any other tool.")],
    solutions: Annotated[Path, typer.Option(
        "--solutions", metavar="FILE", help="Kaggle solutions JSON ({task: [grid, ...]}); .gz/.xz read too.")],
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """ARC Prize score of a submission, both ways: score_by_output and score_by_task.

    No model and no dataset needed. A task missing from the submission counts as unsolved and is
    named; a malformed submission is refused with one line."""
    from hrm.eval.score_submission import format_score, score_submission

    set_quiet(quiet)
    result = score_submission(submission, solutions)
    typer.echo(json.dumps(result) if as_json else format_score(result))
