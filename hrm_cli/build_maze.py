"""`hrm build-data maze`: generate Maze-Hard (or import the reference CSV) into a dataset."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from hrm.common import set_quiet
from hrm.cli.options import Force, Json, Out, Quiet, Seed, plural

EXAMPLE = ("Example: hrm build-data maze --out data/maze --aug 7   "
           "(smoke test: hrm build-data maze --out data/maze-small --size 10 --min-path 15 "
           "--train-size 100 --test-size 100)")


def maze(
    out: Out,
    size: Annotated[int, typer.Option(help="Side of the square maze (seq_len = size*size).")] = 30,
    train_size: Annotated[Optional[int], typer.Option(
        help="Mazes in the train split (default 1000; with --from-csv: every row).", show_default=False)] = None,
    test_size: Annotated[Optional[int], typer.Option(
        help="Mazes in the test split (default 1000; with --from-csv: every row).", show_default=False)] = None,
    min_path: Annotated[Optional[int], typer.Option(
        help="Shortest S->G path of at least this many moves (default 110; with --from-csv: no filter).",
        show_default=False)] = None,
    aug: Annotated[int, typer.Option("--aug", help="K of the 7 other dihedral versions of every train maze, "
                                     "seeded, 0-7 (7: all, 8 puzzles per maze; the TRM paper's setting).")] = 0,
    test_aug: Annotated[int, typer.Option("--test-aug", help="K of the 7 other dihedral versions of every "
                                          "test maze, for test-time voting (0-7).")] = 0,
    unique_path: Annotated[bool, typer.Option(
        "--unique-path", help="Only mazes with exactly one shortest path (generated: walls close the "
                              "alternatives; imported: others are dropped).")] = False,
    seed: Seed = 0,
    from_csv: Annotated[Optional[Path], typer.Option(
        metavar="DIR", help="Import DIR/train.csv and DIR/test.csv (reference layout source,question,answer,rating) "
             "instead of generating.", show_default=False)] = None,
    skip_invalid: Annotated[bool, typer.Option(
        "--skip-invalid", help="With --from-csv: drop invalid rows (logged) instead of failing.")] = False,
    force: Force = False,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Build Maze-Hard: mazes whose label marks a shortest start-to-goal path with 'o'."""
    set_quiet(quiet)
    from hrm.builders.maze import build_maze  # numba loads only when a maze is built

    summary = build_maze(out, size=size, train_size=train_size, test_size=test_size, min_path=min_path,
                         aug=aug, test_aug=test_aug, unique_path=unique_path, seed=seed,
                         from_csv=from_csv, skip_invalid=skip_invalid, force=force)
    typer.echo(json.dumps(summary) if as_json else _text(summary))


def _text(summary: dict[str, Any]) -> str:
    lines = [f"wrote {summary['out']}: {summary['size']}x{summary['size']} mazes "
             f"({'from ' + summary['source'] if summary['source'] != 'generated' else 'generated'}) "
             f"in {summary['seconds']:.1f} s"]
    for split, stats in summary["splits"].items():
        line = f"  {split}: {plural(stats['mazes'], 'maze')}, {plural(stats['examples'], 'example')}"
        if "path_length" in stats:
            lengths, paths = stats["path_length"], stats["num_shortest_paths"]
            line += (f"; path length min {lengths['min']} mean {lengths['mean']:.1f} max {lengths['max']}; "
                     f"{100 * paths['unique_fraction']:.1f}% with a unique shortest path")
        lines.append(line)
    return "\n".join(lines)
