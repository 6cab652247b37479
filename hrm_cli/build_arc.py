"""`hrm build-data arc` and `hrm build-data import-hrm`."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from hrm.common import set_quiet
from hrm.cli.options import BuildCommand, Force, Json, Out, Quiet, Seed, expand_multi_value_options, plural

EXAMPLE = (
    "Examples:\n\n"
    "ARC-1 as in the paper (packaged ARC-AGI-1 training + evaluation + ConceptARC, 960 tasks):  "
    "hrm build-data arc --out data/arc1\n\n"
    "ARC-2 as in the paper (1120 tasks):  "
    "hrm build-data arc --out data/arc2 --subsets training2 evaluation2 --test-set evaluation2\n\n"
    "Unseen tasks (challenges without solutions, for test-time training and a submission):  "
    "hrm build-data arc --out data/unseen --input kaggle/arc-agi --subsets test "
    "--test-set test --no-solutions --aug 100\n\n"
    "Your own copies (Kaggle files in a folder, per-task folders, ConceptARC's corpus):  "
    "hrm build-data arc --out data/arc1 --input ../data/arc ARC-AGI/data concept=ConceptARC/corpus --aug 100"
)
IMPORT_EXAMPLE = "Example: hrm build-data import-hrm ../HRM/data/arc-aug-1000 --out data/arc1-ref"


class MultiValueCommand(BuildCommand):
    """Accept `--input A B` and `--subsets X Y Z` as written in the docs (SPEC 1)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, expand_multi_value_options(args, {"--input", "-i", "--subsets"}))


def arc(
    out: Out,
    inputs: Annotated[Optional[list[str]], typer.Option(
        "--input", "-i", metavar="SOURCE...",
        help="Task sources, one or more: a folder (Kaggle files, or subset folders of per-task JSON), a Kaggle "
             "prefix (DIR/arc-agi), one task JSON file, or NAME=PATH (subset NAME). Default: the ARC-AGI-1/2 + "
             "ConceptARC copy shipped with hrm.")] = None,
    subsets: Annotated[Optional[list[str]], typer.Option(
        "--subsets", metavar="SUBSET...", show_default=False,
        help="Subsets to use (Kaggle <prefix>_<subset>_* files or subset folders). Default: those of training "
             "evaluation concept that --input holds (or every subset it holds when none of them).")] = None,
    test_set: Annotated[Optional[str], typer.Option(
        "--test-set", metavar="SUBSET", show_default=False,
        help="Subset whose test pairs form the test split (its train pairs still train). Default: evaluation "
             "(or the only subset).")] = None,
    aug: Annotated[int, typer.Option("--aug", help="Augmented versions per task (dihedral + colour "
                                     "permutation); paper: 1000.")] = 1000,
    seed: Seed = 0,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Skip invalid tasks (bad grid, "
                                               "missing solution) with a warning instead of failing.")] = False,
    no_solutions: Annotated[bool, typer.Option(
        "--no-solutions", help="Unseen tasks: the --test-set tasks' test outputs are not read (Kaggle "
        "challenges without a solutions file, or per-task JSON whose test pairs have no output); their "
        "test inputs form the test split with nothing scored, and the dataset records it.")] = False,
    force: Force = False,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Build an ARC-AGI dataset from ARC task JSON (default: the packaged copy).

    The train split holds the train pairs of every task (and the test pairs of tasks outside
    --test-set); the test split holds the test pairs of the --test-set tasks. Every task comes
    with up to --aug distinct augmented versions (dihedral transform + colours 1-9 permuted)."""
    from hrm.builders.arc import build_arc  # imported here: numba would slow every other command's start

    set_quiet(quiet)
    summary = build_arc(out, inputs=inputs, subsets=subsets or None, test_set=test_set, aug=aug, seed=seed,
                        skip_invalid=skip_invalid, force=force, no_solutions=no_solutions)
    typer.echo(json.dumps(summary) if as_json else _text(summary))


def _text(summary: dict[str, Any]) -> str:
    """`wrote data/arc1: 960 tasks (training 400, ...), 3,633,400 examples ...`: one line."""
    subset_text = ", ".join(f"{name} {count:,}" for name, count in summary["subsets"].items())
    return (f"wrote {summary['out']}: {plural(summary['tasks'], 'task')} ({subset_text}), "
            f"{plural(summary['puzzle_identifiers'] - 1, 'version')}, train "
            f"{plural(summary['train_examples'], 'example')}, test {plural(summary['test_examples'], 'example')} "
            f"({plural(summary['test_tasks'], summary['test_set'] + ' task')}"
            f"{'' if summary['has_solutions'] else ', no solutions: nothing scored'}), "
            f"{plural(summary['shortfall_tasks'], 'task')} short of {plural(summary['aug'], 'version')}, "
            f"{summary['seconds']} s")


def import_hrm_cmd(
    src: Annotated[Path, typer.Argument(
        metavar="SRC", help="Dataset in the reference layout (train/, test/, identifiers.json).")],
    out: Out,
    task: Annotated[Optional[str], typer.Option(
        "--task", metavar="[sudoku|maze|arc]",
        help="One of sudoku, maze, arc; default: inferred from seq_len and vocab_size.")] = None,
    force: Force = False,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Convert a dataset built by the reference HRM code (.npy files) into this format."""
    from hrm.builders.import_hrm import import_hrm

    set_quiet(quiet)
    summary = import_hrm(src, out, task=task, force=force)
    if as_json:
        typer.echo(json.dumps(summary))
        return
    examples = ", ".join(f"{name} {count:,}" for name, count in summary["examples"].items())
    typer.echo(f"wrote {summary['out']}: {summary['task']} dataset, {examples} examples, "
               f"{plural(summary['puzzle_identifiers'], 'puzzle identifier')}, {summary['seconds']} s")
