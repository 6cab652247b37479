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
OptionalPath = Optional[Path]
