"""The model's answers beside the truth, for `hrm show --predictions FILE --data DIR`.

Reads the predictions table of SPEC 6 (one row per test example: set, example, prediction,
q_halt). Sudoku and maze show one example's prediction with its wrong cells marked. ARC shows,
for each test pair of a task, the top-2 attempts voted over all augmented versions after mapping
each back to the original frame (SPEC 6), each beside the truth. A split built without solutions
(`--no-solutions`) has no truth: the answers are shown unmarked and a note says so.
"""
from __future__ import annotations

import os

import numpy as np

from hrm.augment.arc import parse_version_name
from hrm.common import HrmError
from hrm.builders.dataset import Dataset, PuzzleSet, open_dataset
from hrm.show.render import Figure, Panel
from hrm.show.views import (check_index, default_split, find_identifier, first_set, grid_of,
                           identifier_name, puzzle_of_row)
from hrm.eval.inverse import SetFrames
from hrm.eval.predictions import check_table
from hrm.eval.batches import read_rows
from hrm.eval.vote import top_answers, vote

ATTEMPTS = 2
NO_SOLUTION = "no solution to compare: the {split} split was built without solutions (--no-solutions)"


def read_predictions(path: str | os.PathLike, dataset: Dataset, split: str, set_name: str,
                     examples: np.ndarray) -> dict[int, tuple[np.ndarray, float]]:
    """{example row: (predicted tokens, q_halt)} for the given rows of one set; reads only those
    (the table is validated against the dataset by eval.predictions first)."""
    import pyarrow.parquet as pq

    check_table(path, dataset, split)
    seq_len = dataset.split(split).seq_len
    try:
        table = pq.read_table(path, columns=["example", "prediction", "q_halt"], filters=[
            ("set", "=", set_name), ("example", "in", [int(e) for e in examples])])
    except Exception as error:  # pyarrow raises several types for a damaged file
        raise HrmError(f"{path} is not a readable Parquet predictions table: {error}") from None
    out: dict[int, tuple[np.ndarray, float]] = {}
    for example, prediction, q_halt in zip(table["example"].to_pylist(), table["prediction"].to_pylist(),
                                           table["q_halt"].to_pylist()):
        tokens = np.asarray(prediction, np.uint8)
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
    found = read_predictions(predictions, dataset, split, puzzle_set.name, np.array([index]))
    if index not in found:
        raise HrmError(f"{predictions} has no prediction for {split}/{puzzle_set.name} example {index}")
    tokens, q_halt = found[index]
    inputs, labels = puzzle_set.rows(index, index + 1)
    grid_in, truth, predicted = grid_of(task, inputs[0]), grid_of(task, labels[0]), grid_of(task, tokens)
    clues = grid_in > 0 if task == "sudoku" else None
    if not dataset.split(split).has_solutions:
        panels = [Panel("prediction", task, predicted, clues=clues)]
        verdict = NO_SOLUTION.format(split=split)
    else:
        scored = labels[0].reshape(truth.shape) != dataset.split(split).attrs["ignore_label_id"]
        wrong = (predicted != truth) & scored
        panels = [Panel("truth", task, truth, clues=clues),
                  Panel("prediction", task, predicted, clues=clues, wrong=wrong)]
        n_wrong = int(wrong.sum())
        verdict = "exact" if n_wrong == 0 else f"{n_wrong} of {int(scored.sum())} cells wrong"
    if task == "sudoku":
        panels.insert(0, Panel("input", task, grid_in, clues=clues))
    return Figure(f"{task} {split}[{index}] prediction", [panels],
                  [f"{verdict}; q_halt logit {q_halt:.3f}"])


def _arc_prediction_figure(dataset: Dataset, puzzle_set: PuzzleSet, split: str, predictions: str | os.PathLike,
                           puzzle: int, pairs: list[int]) -> Figure:
    """For each test pair of the task holding `puzzle`: input and truth of the original version,
    then the top ATTEMPTS answers voted over all versions (eval.inverse + eval.vote, as scoring does)."""
    frames = SetFrames("arc", puzzle_set)
    ignore = int(dataset.split(split).attrs["ignore_label_id"])
    group = int(frames.puzzle_group[puzzle])
    starts, groups = puzzle_set.puzzle_indices, puzzle_set.group_indices
    versions = np.arange(groups[group], groups[group + 1])
    original = int(frames.identity_puzzles()[group])
    rows = np.array([starts[v] + k for v in versions for k in pairs if starts[v] + k < starts[v + 1]])
    found = read_predictions(predictions, dataset, split, puzzle_set.name, rows)
    rows = np.array([r for r in rows if r in found], np.int64)
    if not len(rows):
        raise HrmError(f"{predictions} has no prediction for the {split}/{puzzle_set.name} examples of this task "
                       f"(rows {int(starts[original]) + pairs[0]}...)")
    tokens = np.stack([found[int(r)][0] for r in rows])
    q_halt = np.array([found[int(r)][1] for r in rows], np.float64)
    answers = frames.answers(rows, tokens, read_rows(puzzle_set.labels, rows), ignore)
    voters = np.flatnonzero(answers.ok)  # an empty crop is no answer and does not vote
    votes = vote(frames.example_key[rows][voters], answers.hashes[voters], q_halt[voters])
    answer_keys, _, chosen = top_answers(votes, ATTEMPTS)
    truth_rows = np.array([int(starts[original]) + k for k in pairs], np.int64)
    labels = read_rows(puzzle_set.labels, truth_rows)
    truths = frames.answers(truth_rows, labels, labels, ignore)
    original_inputs = read_rows(puzzle_set.inputs, truth_rows)
    inputs = frames.answers(truth_rows, original_inputs, labels, ignore)
    has_truth = dataset.split(split).has_solutions
    figure_rows, solved = [], 0
    for n, k in enumerate(pairs):
        truth = truths.grid(n)
        panels = [Panel(f"test pair {k + 1} input", "arc", inputs.grid(n))]
        if has_truth:
            panels.append(Panel("truth", "arc", truth))
        key = frames.example_key[truth_rows[n]]
        right = False
        for a, answer in enumerate(chosen[answer_keys == key]):
            grid = answers.grid(int(voters[votes.first_vote[answer]]))
            count = int(votes.count[answer])
            title = f"attempt {a + 1}: {count} vote{'s' if count != 1 else ''}"
            if not has_truth:
                panels.append(Panel(f"{title}, {grid.shape[0]}x{grid.shape[1]}", "arc", grid))
                continue
            ok = grid.shape == truth.shape and np.array_equal(grid, truth)
            right = right or ok
            shape = "" if grid.shape == truth.shape else f", {grid.shape[0]}x{grid.shape[1]}"
            panels.append(Panel(f"{title}{shape}{', right' if ok else ''}", "arc", grid, wrong=_wrong(grid, truth)))
        solved += right
        figure_rows.append(panels)
    name = parse_version_name(identifier_name(dataset, int(puzzle_set.puzzle_identifiers[original])))[0]
    voted = len(np.unique(frames.example_puzzle[rows[voters]])) if len(voters) else 0
    outcome = (f"{solved} of {len(pairs)} test pairs solved within {ATTEMPTS} attempts" if has_truth
               else NO_SOLUTION.format(split=split))
    notes = [f"{outcome}; {voted} of {len(versions)} versions gave an answer"]
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
