from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from hrm.common import HrmError, set_quiet
from hrm.cli.options import Json, Quiet

EXAMPLE = "Example: hrm inspect data/sudoku --split test --index 3    |    hrm inspect data/sudoku --verify"


def inspect(
    path: Annotated[Path, typer.Argument(metavar="DATASET", help="Dataset directory.")],
    split: Annotated[Optional[str], typer.Option(
        metavar="SPLIT", help="Split whose example is rendered (default: test).")] = None,
    index: Annotated[int, typer.Option(help="Row of the rendered example.")] = 0,
    verify: Annotated[bool, typer.Option(
        "--verify", help="Read every chunk of every array first and report damage (exit 1), e.g. "
                         "after a copy; takes as long as reading the whole dataset.")] = False,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Show what a dataset holds: task, splits, counts, per-group statistics, one example."""
    set_quiet(quiet)
    from hrm.builders.inspect import describe, format_description
    from hrm.show.views import example_text

    verified = _verify(path, as_json) if verify else None
    info = describe(path)
    if as_json:
        typer.echo(json.dumps(info if verified is None else {**info, "verify": verified}))
        return
    typer.echo(format_description(info))
    if verified is not None:
        typer.echo(f"verified: all {verified['chunks']} chunks of {verified['arrays']} arrays read back intact")
    typer.echo("")
    typer.echo(example_text(path, split, index))


def _verify(path: Path, as_json: bool) -> dict:
    """The `verify_dataset` report; damage is one error line (exit 1), after the report's JSON."""
    from hrm.builders.inspect import verify_dataset

    report = verify_dataset(path)
    found = report["damaged"]
    if found:
        if as_json:
            typer.echo(json.dumps({"path": str(path), "verify": report}))
        more = f" (and {len(found) - 1} more: --json lists all)" if len(found) > 1 and not as_json else ""
        raise HrmError(f"dataset {path} is damaged: {len(found)} of {report['chunks']} chunks do not read "
                       f"back; {found[0]}{more}; rebuild it with `hrm build-data`")
    return report
