from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from hrm.common import set_quiet
from hrm.cli.options import Json, Quiet

EXAMPLE = "Example: hrm inspect data/sudoku --split test --index 3"


def inspect(
    path: Annotated[Path, typer.Argument(metavar="DATASET", help="Dataset directory.")],
    split: Annotated[Optional[str], typer.Option(
        metavar="SPLIT", help="Split whose example is rendered (default: test).")] = None,
    index: Annotated[int, typer.Option(help="Row of the rendered example.")] = 0,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Show what a dataset holds: task, splits, counts, per-group statistics, one example."""
    set_quiet(quiet)
    from hrm.builders.inspect import describe, format_description
    from hrm.show.views import example_text

    info = describe(path)
    if as_json:
        typer.echo(json.dumps(info))
        return
    typer.echo(format_description(info))
    typer.echo("")
    typer.echo(example_text(path, split, index))
