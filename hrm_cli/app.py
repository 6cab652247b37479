"""The root Typer app. Commands live in their own modules and call library functions."""
from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Optional

import typer

from builders.common import HrmError
from hrm_cli import build_sudoku, inspect_cmd, train_cmd
from hrm_cli import build_arc
from hrm_cli import build_maze
from hrm_cli import eval_cmd
from hrm_cli import show_cmd

app = typer.Typer(
    name="hrm",
    help="Build reasoning-puzzle datasets, train the Hierarchical Reasoning Model, score checkpoints.\n\n"
         "Example: hrm build-data sudoku --out data/sudoku && hrm inspect data/sudoku",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
build_app = typer.Typer(
    help="Build a dataset (sudoku, maze, arc) or import one in the reference layout.",
    no_args_is_help=True,
)
app.add_typer(build_app, name="build-data")
app.command("inspect", epilog=inspect_cmd.EXAMPLE)(inspect_cmd.inspect)
build_app.command("sudoku", epilog=build_sudoku.EXAMPLE)(build_sudoku.sudoku)
build_app.command("maze", epilog=build_maze.EXAMPLE)(build_maze.maze)
build_app.command("arc", cls=build_arc.MultiValueCommand, epilog=build_arc.EXAMPLE)(build_arc.arc)
build_app.command("import-hrm", epilog=build_arc.IMPORT_EXAMPLE)(build_arc.import_hrm_cmd)
app.command("train", epilog=train_cmd.EXAMPLE)(train_cmd.train)
app.command("eval", epilog=eval_cmd.EXAMPLE)(eval_cmd.eval_command)
app.command("show", epilog=show_cmd.EXAMPLE)(show_cmd.show)


def _version() -> str:
    try:
        return version("hrm")
    except PackageNotFoundError:
        return "0+unknown"


@app.callback()
def root(
    show_version: Annotated[Optional[bool], typer.Option("--version", help="Print the version and exit.",
                                                         is_eager=True)] = None,
) -> None:
    if show_version:
        typer.echo(f"hrm {_version()}")
        raise typer.Exit()


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 1, never a traceback."""
    try:
        app()
    except HrmError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
