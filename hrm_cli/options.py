"""Options shared by the commands, so that the same option has the same name, placeholder, help
and place on every page; and the command classes that keep every `--help` page in one shape."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from hrm.common import plural  # noqa: F401 (the commands' count formatting, kept importable from here)

Out = Annotated[Path, typer.Option("--out", "-o", metavar="DIR", help="Output directory (written atomically).")]
Force = Annotated[bool, typer.Option("--force", help="Replace an existing output (only one that hrm wrote).")]
Seed = Annotated[int, typer.Option(
    "--seed", metavar="N", help="Random seed of everything this command draws: the same arguments and seed "
                                "give the same result.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or log lines on stderr.")]
Json = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object on stdout.")]
Data = Annotated[Path, typer.Option("--data", "-d", metavar="DIR", help="Dataset directory (from `hrm build-data`).")]
Threads = Annotated[Optional[int], typer.Option(
    "--threads", min=0, show_default=False, metavar="N",
    help="CPU threads for torch (default on a CPU: the cores idle when the command starts, by the load "
         "average, since threads collapse when another process shares the cores; 0 = PyTorch's "
         "default, one per core). See docs/training.md, CPU threads.")]
OptionalPath = Optional[Path]

# `hrm eval`'s choices, written out here because their home modules (eval.vote.RANKERS,
# eval.candidate_spec.HALT_RULES) import numpy, which `hrm --help` must not load; a test keeps
# the lists equal. The library validates the value (a usage error, exit 2).
RANKERS = ("votes", "max_q", "mean_q", "residual", "q_votes")
HALT_RULES = ("all", "q")


def choices(values: tuple[str, ...]) -> str:
    """The placeholder of an option that takes one of `values`: `[votes|max_q|...]`."""
    return "[" + "|".join(values) + "]"


# The options most pages share come last, always in this order (then -h/--help), whatever order
# a command's function declares them in.
TRAILING_OPTIONS = ("threads", "force", "as_json", "quiet")

# What a placeholder says when an option names none (from Typer's type label, e.g. `<int range>`):
# what is expected, not Python's type.
_DEFAULT_METAVARS = {"int": "N", "int range": "N", "float": "X", "float range": "X", "path": "PATH", "str": "TEXT"}


class HrmCommand(TyperCommand):
    """Every hrm command: shared options in one order, and Ctrl-C reported as one line."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        tail = sorted((p for p in params if p.name in TRAILING_OPTIONS), key=lambda p: TRAILING_OPTIONS.index(p.name))
        helps = [p for p in params if p.name == "help"]
        return [p for p in params if p.name not in TRAILING_OPTIONS and p.name != "help"] + tail + helps

    def interrupted_message(self, ctx: Any) -> str:
        return "interrupted"

    def invoke(self, ctx: Any) -> Any:
        # Typer turns a KeyboardInterrupt into a silent exit 130; raised as this instead, it
        # reaches hrm's main, which prints the command's one line.
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise CommandInterrupted(self.interrupted_message(ctx)) from None


class BuildCommand(HrmCommand):
    """`hrm build-data ...`: a dataset is written whole or not at all."""

    def interrupted_message(self, ctx: Any) -> str:
        out = ctx.params.get("out")
        return f"interrupted: nothing written{f' to {out}' if out is not None else ''}"


class CommandInterrupted(Exception):
    """Ctrl-C stopped a command; the message says what that left (exit 130)."""


class HrmGroup(TyperGroup):
    """Commands listed in the order of the workflow, each with its whole one-line description."""

    ORDER = ("build-data", "inspect", "show", "train", "eval", "trace", "compare", "score-submission")

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        rank = {name: position for position, name in enumerate(self.ORDER)}
        return sorted(names, key=lambda name: rank.get(name, len(rank)))


def _option_metavar(self: TyperOption, ctx: Any) -> str | None:
    if self.is_flag:
        return None  # a flag takes no value: no placeholder (Typer would show <bool>)
    if self.metavar is not None:
        return self.metavar
    label = TyperOption.display_type(self, ctx).strip("<>")
    many = label.startswith("list[")
    label = label.removeprefix("list[").removesuffix("]").lower()
    return _DEFAULT_METAVARS.get(label, label.upper()) + ("..." if many else "")


def _argument_usage_name(self: TyperArgument) -> str:
    """Click's form in the usage line: `RUN...`, `[TARGET]` (Typer writes `{path}`)."""
    name = self.metavar or self.name.upper()
    name = name if self.required else f"[{name}]"
    return name + ("..." if self.nargs != 1 else "")


def install_help_format() -> None:
    """Placeholders that name what is expected (DIR, FILE, N, [a|b]) instead of Python types
    (`<list[Path]>`, `<int range>`): an argument's name is its own placeholder."""
    TyperOption.display_type_rich = _option_metavar
    TyperArgument.display_type_rich = lambda self, ctx: None
    TyperArgument._usage_display_name = _argument_usage_name


def expand_multi_value_options(args: list[str], names: set[str]) -> list[str]:
    """Let options in `names` take several values, as in `--subsets training evaluation`:
    click takes one value per occurrence, so repeat the option before each further value."""
    expanded: list[str] = []
    current, has_value = None, False
    for position, token in enumerate(args):
        if token == "--":
            return expanded + args[position:]
        if token.startswith("-") and len(token) > 1:
            name, inline, _ = token.partition("=")  # --subsets=training takes its first value inline
            current, has_value = (name if name in names else None), bool(inline)
            expanded.append(token)
        elif current is not None and has_value:
            expanded.extend([current, token])
        else:
            expanded.append(token)
            has_value = True
    return expanded
