"""The root Typer app. Commands live in their own modules and call library functions."""
from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer
from typer.core import TyperOption

from hrm.common import HrmError, UsageError, storage_error
from hrm.cli import (build_arc, build_maze, build_sudoku, compare_cmd, eval_cmd, inspect_cmd, score_cmd, show_cmd,
                     trace_cmd, train_cmd)

app = typer.Typer(
    name="hrm",
    help="Build reasoning-puzzle datasets, train the Hierarchical Reasoning Model, score checkpoints.\n\n"
         "Example: hrm build-data sudoku --out data/sudoku && hrm inspect data/sudoku",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help, not Rich panels: importing rich for them doubled `hrm --help`'s start-up
    # (~0.15 CPU-s of ~0.3; target < 0.3 s wall on 2 busy cores, benchmarks/bench_startup.py).
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
build_app = typer.Typer(
    help="Build a dataset (sudoku, maze, arc) or import one in the reference layout.",
    epilog="Examples: hrm build-data sudoku --out data/sudoku  |  hrm build-data maze --out data/maze "
           "--aug 7  |  hrm build-data arc --out data/arc1  |  hrm build-data import-hrm "
           "../HRM/data/sudoku-extreme-1k-aug-1000 --out data/sudoku-ref   (each: --help for its options)",
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
app.command("score-submission", epilog=score_cmd.EXAMPLE)(score_cmd.score_submission_command)
app.command("compare", epilog=compare_cmd.EXAMPLE)(compare_cmd.compare)
app.command("trace", epilog=trace_cmd.EXAMPLE)(trace_cmd.trace_command)


def _print_version(value: bool) -> None:
    if value:
        from hrm import __version__

        typer.echo(f"hrm {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    show_version: Annotated[Optional[bool], typer.Option(
        "--version", help="Print the version and exit.", is_eager=True, callback=_print_version)] = None,
) -> None:
    """Build reasoning-puzzle datasets, train the Hierarchical Reasoning Model, score checkpoints."""


# A flag takes no value: show no type (Typer labels every option, flags as <bool>).
_display_type_rich = TyperOption.display_type_rich
TyperOption.display_type_rich = lambda self, ctx: None if self.is_flag else _display_type_rich(self, ctx)

# Typer's base exception for usage errors (click's, or the copy newer Typer versions vendor).
_ClickException = next(cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "ClickException")


def main() -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit, never a traceback
    (1 for bad input or a read-only/full/forbidden file system, 2 for bad usage, 130 for Ctrl-C)."""
    try:
        code = app(standalone_mode=False)
    except HrmError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2 if isinstance(error, UsageError) else 1)
    except OSError as error:  # the storage's errors that no command turned into a sentence
        replacement = storage_error(error)
        if replacement is None:
            raise
        print(f"error: {replacement}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside a command's own handling
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except _ClickException as error:
        context = getattr(error, "ctx", None)
        if type(error).__name__ == "NoArgsIsHelpError":  # a bare `hrm` or `hrm build-data`: its help, once
            if context is not None:
                typer.echo(context.get_help())
            sys.exit(error.exit_code)
        hint = f" (see '{context.command_path} --help')" if context is not None else ""
        message = " ".join(error.format_message().split())
        print(f"error: {message}{hint}", file=sys.stderr)
        sys.exit(error.exit_code)
    # A command that stops with an exit code (e.g. `hrm train` after a signal: 128 + signum)
    # has printed its own one line.
    sys.exit(code if isinstance(code, int) else 0)
