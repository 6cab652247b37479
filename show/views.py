"""Views of a dataset for `hrm show` and `hrm inspect`: one example, or every pair of one ARC task.

Each view is a `hrm.show.render.Figure`, drawn as text by `hrm.show.render.figure_text` and as a
PNG, SVG or PDF by `hrm.show.render_png.write_figure_picture`.
"""
from __future__ import annotations

import os

import numpy as np

from hrm.common import HrmError
from hrm.builders.dataset import Dataset, PuzzleSet, checked_read, open_dataset
from hrm.show.render import Figure, Panel, arc_grid_from_canvas, render_tokens, side_by_side, sudoku_digits


def grid_of(task: str, tokens: np.ndarray) -> np.ndarray:
    """A dataset row (tokens) decoded to the grid its panel draws."""
    tokens = np.asarray(tokens)
    if task == "sudoku":
        return sudoku_digits(tokens)
    if task == "maze":
        side = int(np.sqrt(tokens.size))
        return tokens.reshape(side, side).astype(np.int64)
    if task == "arc":
        return arc_grid_from_canvas(tokens)
    raise HrmError(f"cannot show a dataset of task {task!r} (known: sudoku, maze, arc)")


def example_panels(task: str, inputs: np.ndarray, labels: np.ndarray, titles: tuple[str, str]) -> list[Panel]:
    """Input and label panels; sudoku labels mark the input's clues."""
    grid_in, grid_out = grid_of(task, inputs), grid_of(task, labels)
    clues = grid_in > 0 if task == "sudoku" else None
    return [Panel(titles[0], task, grid_in, clues=clues), Panel(titles[1], task, grid_out, clues=clues)]


def default_split(dataset: Dataset, split: str | None) -> str:
    if split is not None:
        dataset.split(split)  # raises a clear error for an unknown split
        return split
    if not dataset.split_names:
        raise HrmError(f"{dataset.path} holds no splits")
    return "test" if "test" in dataset.split_names else dataset.split_names[0]


def first_set(dataset: Dataset, split: str) -> PuzzleSet:
    names = dataset.split(split).set_names
    return dataset.split(split).set("all" if "all" in names else names[0])


def check_index(puzzle_set: PuzzleSet, index: int, where: str) -> None:
    n = puzzle_set.num_examples
    if not 0 <= index < n:
        span = f"0..{n - 1}" if n else "none"
        raise HrmError(f"index {index} is out of range: {where} has {n} examples ({span})")


def identifier_name(dataset: Dataset, identifier: int) -> str:
    """One name, read from the identifiers array's chunk only (ARC has ~1M names)."""
    return str(checked_read(dataset.root["identifiers"], int(identifier), int(identifier) + 1)[0])


def puzzle_of_row(puzzle_set: PuzzleSet, row: int) -> int:
    return int(np.searchsorted(puzzle_set.puzzle_indices, row, side="right")) - 1


def example_figure(path: str | os.PathLike, split: str | None = None, index: int = 0) -> Figure:
    """Input and label of example `index` of a split (default: test)."""
    dataset = open_dataset(path)
    split = default_split(dataset, split)
    puzzle_set = first_set(dataset, split)
    check_index(puzzle_set, index, f"{dataset.path} {split}/{puzzle_set.name}")
    inputs, labels = puzzle_set.rows(index, index + 1)
    puzzle = puzzle_of_row(puzzle_set, index)
    title = f"{dataset.task} {split}[{index}]"
    identifier = int(puzzle_set.puzzle_identifiers[puzzle])
    if identifier:
        pair = index - int(puzzle_set.puzzle_indices[puzzle])
        title += f"  puzzle {identifier_name(dataset, identifier)}, pair {pair + 1}"
    panels = example_panels(dataset.task, inputs[0], labels[0], ("input", "label"))
    notes = []
    if dataset.task == "sudoku":
        notes.append(f"{int(panels[0].clues.sum())} clues (bold in the terminal, grey cells in the PNG)")
    elif dataset.task == "maze":
        notes.append(f"path: {int(np.count_nonzero(panels[1].grid == 5))} cells marked o")
    return Figure(title, [panels], notes)


def find_identifier(dataset: Dataset, name: str) -> int:
    names = dataset.identifiers()
    matches = np.flatnonzero(names == name)
    if len(matches) == 0:
        known = [str(n) for n in names[1:] if "_t" not in str(n)][:3]
        hint = f" (e.g. {', '.join(known)})" if known else ""
        raise HrmError(f"no ARC task named {name!r} in {dataset.path}{hint}")
    return int(matches[0])


def arc_task_figure(path: str | os.PathLike, name: str) -> Figure:
    """Every pair of ARC puzzle `name` (a bare task name = its original version): the rows of that
    puzzle in the train split, then in the test split, decoded from their canvases."""
    dataset = open_dataset(path)
    if dataset.task != "arc":
        raise HrmError(f"--task finds ARC tasks; {dataset.path} is a {dataset.task} dataset (use --index)")
    identifier = find_identifier(dataset, name)
    rows: list[list[Panel]] = []
    counts = {}
    for split in dataset.split_names:
        for set_name, puzzle_set in dataset.split(split).sets.items():
            for puzzle in np.flatnonzero(puzzle_set.puzzle_identifiers == identifier):
                start, stop = (int(i) for i in puzzle_set.puzzle_indices[puzzle:puzzle + 2])
                inputs, labels = puzzle_set.rows(start, stop)
                for k in range(stop - start):
                    counts[split] = counts.get(split, 0) + 1
                    rows.append(example_panels("arc", inputs[k], labels[k],
                                               (f"{split} pair {counts[split]} input", "output")))
    summary = ", ".join(f"{n} {split}-split pair{'s' if n != 1 else ''}" for split, n in counts.items()) or "no pairs"
    return Figure(f"ARC task {name}: {summary}", rows)


def example_text(path: str | os.PathLike, split: str | None = None, index: int = 0,
                 colour: bool | None = None) -> str:
    """Input and label of one example, rendered side by side."""
    dataset = open_dataset(path)
    split_name = default_split(dataset, split)
    puzzle_set = first_set(dataset, split_name)
    if puzzle_set.num_examples == 0 and index == 0:
        return f"({split_name} is empty)"
    check_index(puzzle_set, index, f"{dataset.path} {split_name}/{puzzle_set.name}")  # the rule `hrm show` uses
    inputs, labels = puzzle_set.rows(index, index + 1)
    blocks = [render_tokens(dataset.task, inputs[0], colour), render_tokens(dataset.task, labels[0], colour)]
    return side_by_side(blocks, [f"{split_name}[{index}] input", "label"])
