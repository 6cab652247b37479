"""The model's answers beside the truth, for `hrm show --predictions FILE --data DIR`.

Reads the predictions table of SPEC 6 (one row per test example: set, example, prediction,
q_halt). Sudoku and maze show one example's prediction with its wrong cells marked. ARC shows,
for each test pair of a task, the top-2 attempts voted over all augmented versions after mapping
each back to the original frame (SPEC 6), each beside the truth.
"""
from __future__ import annotations

import os
from pathlib import Path
import numpy as np

from augment.colour import inverse_colour_map
from augment.dihedral import inverse_dihedral
from builders.common import HrmError
from builders.dataset import Dataset, PuzzleSet, open_dataset
from builders.render import Figure, Panel, arc_grid_from_tokens
from builders.show import (check_index, default_split, find_identifier, first_set, grid_of,
                           identifier_name, puzzle_of_row)

COLUMNS = ("set", "example", "prediction", "q_halt")
ATTEMPTS = 2


def read_predictions(path: str | os.PathLike, set_name: str, examples: np.ndarray,
                     seq_len: int) -> dict[int, tuple[np.ndarray, float]]:
    """{example row: (predicted tokens, q_halt)} for the given rows of one set; reads only those."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise HrmError(f"predictions file {path} does not exist")
    try:
        schema = pq.read_schema(path)
        missing = [c for c in COLUMNS if c not in schema.names]
        if missing:
            raise HrmError(f"{path} is not a predictions table: no column {', '.join(missing)} "
                           f"(expected {', '.join(COLUMNS)}, as `hrm eval --predictions` writes)")
        table = pq.read_table(path, columns=list(COLUMNS), filters=[
            ("set", "=", set_name), ("example", "in", [int(e) for e in examples])])
    except HrmError:
        raise
    except Exception as error:  # pyarrow raises several types for a damaged or foreign file
        raise HrmError(f"{path} is not a readable Parquet predictions table: {error}") from None
    out: dict[int, tuple[np.ndarray, float]] = {}
    for example, prediction, q_halt in zip(table["example"].to_pylist(), table["prediction"].to_pylist(),
                                           table["q_halt"].to_pylist()):
        tokens = np.asarray(prediction, np.int64)
        if tokens.shape != (seq_len,):
            raise HrmError(f"{path}: the prediction of {set_name} example {example} has {tokens.size} tokens; "
                           f"the dataset's seq_len is {seq_len}")
        out[int(example)] = (tokens, float(q_halt))
    return out


def _wrong(prediction: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Cells of `prediction` that differ from `truth`, or lie outside it (ARC shapes may differ)."""
    wrong = np.ones(prediction.shape, bool)
    h, w = min(prediction.shape[0], truth.shape[0]), min(prediction.shape[1], truth.shape[1])
    wrong[:h, :w] = prediction[:h, :w] != truth[:h, :w]
    return wrong


def _grid_prediction_figure(dataset: Dataset, puzzle_set: PuzzleSet, split: str, index: int,
                            predictions: str | os.PathLike) -> Figure:
    """Sudoku or maze: input, truth and prediction of one example, wrong cells marked."""
    task = dataset.task
    found = read_predictions(predictions, puzzle_set.name, np.array([index]), int(puzzle_set.inputs.shape[1]))
    if index not in found:
        raise HrmError(f"{predictions} has no prediction for {split}/{puzzle_set.name} example {index}")
    tokens, q_halt = found[index]
    inputs, labels = puzzle_set.rows(index, index + 1)
    grid_in, truth, predicted = grid_of(task, inputs[0]), grid_of(task, labels[0]), grid_of(task, tokens)
    scored = labels[0].reshape(truth.shape) != dataset.split(split).attrs["ignore_label_id"]
    wrong = (predicted != truth) & scored
    clues = grid_in > 0 if task == "sudoku" else None
    panels = [Panel("truth", task, truth, clues=clues), Panel("prediction", task, predicted, clues=clues, wrong=wrong)]
    if task == "sudoku":
        panels.insert(0, Panel("input", task, grid_in, clues=clues))
    n_wrong = int(wrong.sum())
    verdict = "exact" if n_wrong == 0 else f"{n_wrong} of {int(scored.sum())} cells wrong"
    return Figure(f"{task} {split}[{index}] prediction", [panels],
                  [f"{verdict}; q_halt logit {q_halt:.3f}"])


def _to_original(grid: np.ndarray, dihedral_id: int, colour_map: np.ndarray) -> np.ndarray:
    """An ARC grid of an augmented version mapped back to the task's original frame (SPEC 6)."""
    return inverse_dihedral(inverse_colour_map(colour_map)[grid], dihedral_id)


def _top_attempts(candidates: list[tuple[np.ndarray, float]], original: int) -> tuple[list[tuple[np.ndarray, str]], str]:
    """Up to ATTEMPTS ranked answers with a label each, and a note on how they were chosen.

    CALL SITE for the voting of eval/vote.py (SPEC 6: rank distinct answers by votes, ties by mean
    sigmoid(q_halt)); hrm show must not carry a second voting implementation. Until that module
    is merged, this shows the original (unaugmented) version's prediction alone."""
    try:
        from eval import vote  # noqa: F401  (lands with the eval branch)
    except ImportError:
        grid, q_halt = candidates[original]
        return [(grid, f"q_halt {q_halt:.2f}")], ("attempt 1 = the original version's prediction "
                                                  "(voting needs eval/vote.py, not in this build)")
    raise HrmError("eval/vote.py is present but hrm show does not call it yet")


def _arc_prediction_figure(dataset: Dataset, puzzle_set: PuzzleSet, split: str, predictions: str | os.PathLike,
                           puzzle: int, pairs: list[int]) -> Figure:
    groups = puzzle_set.group_indices
    group = int(np.searchsorted(groups, puzzle, side="right")) - 1
    versions = np.arange(groups[group], groups[group + 1])
    starts = puzzle_set.puzzle_indices
    dihedral = puzzle_set.field("aug_dihedral")
    colour_maps = puzzle_set.field("aug_colour_map")
    identity = np.arange(colour_maps.shape[1])
    originals = [v for v in versions if dihedral[v] == 0 and np.array_equal(colour_maps[v], identity)]
    original = int(originals[0]) if originals else int(puzzle)
    rows = np.array([starts[v] + k for v in versions for k in pairs])
    found = read_predictions(predictions, puzzle_set.name, rows, int(puzzle_set.inputs.shape[1]))
    figure_rows, notes, solved = [], [], 0
    for k in pairs:
        inputs, labels = puzzle_set.rows(int(starts[original]) + k, int(starts[original]) + k + 1)
        grid_in, truth = (_to_original(grid_of("arc", tokens[0]), int(dihedral[original]), colour_maps[original])
                          for tokens in (inputs, labels))
        candidates, original_at = [], 0
        for v in versions:
            row = int(starts[v]) + k
            if row not in found:
                raise HrmError(f"{predictions} has no prediction for {split}/{puzzle_set.name} example {row}")
            tokens, q_halt = found[row]
            if v == original:
                original_at = len(candidates)
            candidates.append((_to_original(arc_grid_from_tokens(tokens), int(dihedral[v]), colour_maps[v]), q_halt))
        attempts, how = _top_attempts(candidates, original_at)
        panels = [Panel(f"test pair {k + 1} input", "arc", grid_in), Panel("truth", "arc", truth)]
        right = False
        for a, (grid, label) in enumerate(attempts):
            ok = grid.shape == truth.shape and np.array_equal(grid, truth)
            right = right or ok
            shape = "" if grid.shape == truth.shape else f" {grid.shape[0]}x{grid.shape[1]}"
            panels.append(Panel(f"attempt {a + 1} ({label}){shape}{' ok' if ok else ''}", "arc", grid,
                                wrong=_wrong(grid, truth)))
        solved += right
        figure_rows.append(panels)
        if how not in notes:
            notes.append(how)
    name = identifier_name(dataset, int(puzzle_set.puzzle_identifiers[original]))
    notes.insert(0, f"{solved} of {len(pairs)} test pairs solved by the attempts shown "
                    f"({len(versions)} versions predicted)")
    return Figure(f"ARC task {name}: predictions", figure_rows, notes)


def prediction_figure(predictions: str | os.PathLike, data: str | os.PathLike, *, split: str | None = None,
                      index: int | None = None, task: str | None = None) -> Figure:
    """The view of `hrm show --predictions`: by example row (`index`) or by ARC task name."""
    dataset = open_dataset(data)
    split = default_split(dataset, split)
    puzzle_set = first_set(dataset, split)
    if task is not None:
        if dataset.task != "arc":
            raise HrmError(f"--task finds ARC tasks; {dataset.path} is a {dataset.task} dataset (use --index)")
        identifier = find_identifier(dataset, task)
        puzzles = np.flatnonzero(puzzle_set.puzzle_identifiers == identifier)
        if len(puzzles) == 0:
            raise HrmError(f"ARC task {task!r} has no pairs in the {split} split of {dataset.path}")
        puzzle = int(puzzles[0])
        count = int(puzzle_set.puzzle_indices[puzzle + 1] - puzzle_set.puzzle_indices[puzzle])
        return _arc_prediction_figure(dataset, puzzle_set, split, predictions, puzzle, list(range(count)))
    index = 0 if index is None else index
    check_index(puzzle_set, index, f"{dataset.path} {split}/{puzzle_set.name}")
    if dataset.task == "arc":
        puzzle = puzzle_of_row(puzzle_set, index)
        pair = index - int(puzzle_set.puzzle_indices[puzzle])
        return _arc_prediction_figure(dataset, puzzle_set, split, predictions, puzzle, [pair])
    return _grid_prediction_figure(dataset, puzzle_set, split, index, predictions)

