"""Option types shared by the commands, so that the same option has the same name everywhere."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

Out = Annotated[Path, typer.Option("--out", "-o", help="Output directory (written atomically).")]
Force = Annotated[bool, typer.Option("--force", help="Replace an existing output.")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed; same arguments + seed = identical arrays.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or log lines on stderr.")]
Json = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object on stdout.")]
Data = Annotated[Path, typer.Option("--data", "-d", help="Dataset directory (from `hrm build-data`).")]
Threads = Annotated[Optional[int], typer.Option(
    "--threads", min=0, show_default=False,
    help="CPU threads for torch (default 1 on a CPU: more threads collapse when another process "
         "shares the cores; 0 = PyTorch's default, one per core). See README, CPU threads.")]
OptionalPath = Optional[Path]


def plural(count: float, word: str, many: str | None = None) -> str:
    """`1 task`, `3 tasks`, `1 version` (the messages count things)."""
    return f"{count:g} {word if count == 1 else (many or word + 's')}"


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
