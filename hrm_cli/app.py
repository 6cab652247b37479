"""The root Typer app. Commands live in their own modules and call library functions."""
from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from hrm.common import HrmError, UsageError, print_error, storage_error
from hrm.cli import (build_arc, build_maze, build_sudoku, compare_cmd, eval_cmd, inspect_cmd, score_cmd, show_cmd,
                     trace_cmd, train_cmd)
from hrm.cli.options import BuildCommand, CommandInterrupted, HrmCommand, HrmGroup, install_help_format

app = typer.Typer(
    name="hrm",
    help="Build reasoning-puzzle datasets, train the Hierarchical Reasoning Model, score checkpoints.\n\n"
         "Example: hrm build-data sudoku --out data/sudoku && hrm inspect data/sudoku",
    no_args_is_help=True,
    cls=HrmGroup,
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
    cls=HrmGroup,
)
# `hrm --help` lists the commands in the order of the workflow (HrmGroup.ORDER), each with this
# line: short enough to stay whole on an 80-column terminal.
app.add_typer(build_app, name="build-data", short_help="Build a dataset: sudoku, maze, arc, or import-hrm.")
app.command("inspect", cls=HrmCommand, epilog=inspect_cmd.EXAMPLE,
            short_help="Describe a dataset: splits, counts, one example.")(inspect_cmd.inspect)
app.command("show", cls=HrmCommand, epilog=show_cmd.EXAMPLE,
            short_help="Draw a dataset example, predictions, a run's curves.")(show_cmd.show)
app.command("train", cls=train_cmd.TrainCommand, epilog=train_cmd.EXAMPLE,
            short_help="Train HRM, TRM or a transformer; resume a run.")(train_cmd.train)
app.command("eval", cls=HrmCommand, epilog=eval_cmd.EXAMPLE,
            short_help="Score checkpoints: voting, pass@K, test-time compute.")(eval_cmd.eval_command)
app.command("trace", cls=HrmCommand, epilog=trace_cmd.EXAMPLE,
            short_help="Look inside the recurrence: residuals, answers by update.")(trace_cmd.trace_command)
app.command("compare", cls=HrmCommand, epilog=compare_cmd.EXAMPLE,
            short_help="Compare runs: differing config, metrics, curves.")(compare_cmd.compare)
app.command("score-submission", cls=HrmCommand, epilog=score_cmd.EXAMPLE,
            short_help="Score an ARC submission against a solutions file.")(score_cmd.score_submission_command)
build_app.command("sudoku", cls=BuildCommand, epilog=build_sudoku.EXAMPLE,
                  short_help="Sudoku-Extreme: hard puzzles, augmented.")(build_sudoku.sudoku)
build_app.command("maze", cls=BuildCommand, epilog=build_maze.EXAMPLE,
                  short_help="Maze-Hard: 30x30 mazes with a shortest path.")(build_maze.maze)
build_app.command("arc", cls=build_arc.MultiValueCommand, epilog=build_arc.EXAMPLE,
                  short_help="ARC-AGI from task JSON (default: the packaged copy).")(build_arc.arc)
build_app.command("import-hrm", cls=BuildCommand, epilog=build_arc.IMPORT_EXAMPLE,
                  short_help="Convert a dataset built by the reference HRM code.")(build_arc.import_hrm_cmd)


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


install_help_format()

# Typer's base exception for usage errors (click's, or the copy newer Typer versions vendor).
_ClickException = next(cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "ClickException")


def main() -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit, never a traceback
    (1 for bad input or a read-only/full/forbidden file system, 2 for bad usage, 130 for Ctrl-C)."""
    try:
        code = app(standalone_mode=False)
    except HrmError as error:
        print_error(str(error))
        sys.exit(2 if isinstance(error, UsageError) else 1)
    except CommandInterrupted as stop:  # Ctrl-C inside a command (a second one, in `hrm train`)
        print_error(str(stop))
        sys.exit(130)
    except OSError as error:  # the storage's errors that no command turned into a sentence
        replacement = storage_error(error)
        if replacement is None:
            raise
        print_error(replacement)
        sys.exit(1)
    except KeyboardInterrupt:  # Ctrl-C while the command line is read
        print_error("interrupted")
        sys.exit(130)
    except _ClickException as error:
        context = getattr(error, "ctx", None)
        if type(error).__name__ == "NoArgsIsHelpError":  # a bare `hrm` or `hrm build-data`: its help, once
            if context is not None:
                typer.echo(context.get_help())
            sys.exit(error.exit_code)
        hint = f" (see '{context.command_path} --help')" if context is not None else ""
        message = " ".join(error.format_message().split())
        print_error(f"{message}{hint}")
        sys.exit(error.exit_code)
    # A command that stops with an exit code (e.g. `hrm train` after a signal: 128 + signum)
    # has printed its own one line.
    sys.exit(code if isinstance(code, int) else 0)
