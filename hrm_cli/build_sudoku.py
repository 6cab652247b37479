from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from hrm.common import set_quiet
from hrm.cli.options import Force, Json, Out, Quiet, Seed, plural

EXAMPLE = ("Examples:\n\n"
           "hrm build-data sudoku --out data/sudoku    (1000 hard train puzzles x 1001 versions, 1000 test)\n\n"
           "hrm build-data sudoku --out data/sudoku-x --from-csv sudoku-extreme/ --train-size 1000 --test-aug 8\n\n"
           "hrm build-data sudoku --out data/tiny --box 2 --blanks 8 --train-size 500 --aug 20")


def sudoku(
    out: Out,
    train_size: Annotated[int, typer.Option(help="Train puzzles (generated, or subsampled from the CSV).")] = 1000,
    test_size: Annotated[int, typer.Option(help="Test puzzles (generated, or subsampled from the CSV).")] = 1000,
    min_difficulty: Annotated[int, typer.Option(
        help="Minimum rating (dead ends of the rater's search) of every puzzle.")] = 0,
    aug: Annotated[int, typer.Option(help="Augmented versions per train puzzle (plus the original).")] = 1000,
    test_aug: Annotated[int, typer.Option(
        help="Augmented versions per test puzzle, for test-time voting.")] = 0,
    box: Annotated[int, typer.Option(help="Box side: 3 = 9x9 sudoku, 2 = 4x4 (smoke runs).")] = 3,
    blanks: Annotated[int, typer.Option(
        help="Give every puzzle exactly this many blanks (unique, not minimal, no hardness search) "
             "instead of hard minimal puzzles; 0 = off.")] = 0,
    seed: Seed = 0,
    from_csv: Annotated[Optional[Path], typer.Option(
        metavar="DIR", help="Folder with train.csv and test.csv in the reference layout "
                            "(source,question,answer,rating) to import instead of generating.")] = None,
    skip_invalid: Annotated[bool, typer.Option(
        "--skip-invalid", help="Skip (and report) invalid CSV rows instead of failing.")] = False,
    force: Force = False,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Build Sudoku-Extreme: hard generated (or imported) puzzles with unique solutions, augmented."""
    from hrm.builders.sudoku import build_sudoku  # numba import deferred so --help stays fast

    set_quiet(quiet)
    result = build_sudoku(out, train_size=train_size, test_size=test_size, min_difficulty=min_difficulty,
                          aug=aug, test_aug=test_aug, box=box, seed=seed, from_csv=from_csv,
                          skip_invalid=skip_invalid, force=force, blanks=blanks)
    typer.echo(json.dumps(result) if as_json else _text(result))


def _text(result: dict[str, Any]) -> str:
    """`wrote data/sudoku: train 1,000 puzzles x 1,001 versions = 1,001,000 examples, ...`."""
    parts = []
    for name, split in result["splits"].items():
        versions = split["puzzles"] / max(1, split["groups"])
        parts.append(f"{name} {plural(split['groups'], 'puzzle')} x {plural(versions, 'version')} = "
                     f"{plural(split['examples'], 'example')}, mean rating {split['rating_mean']}")
    return f"wrote {result['out']}: " + "; ".join(parts) + f" ({result['seconds']:.1f} s)"
