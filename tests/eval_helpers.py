"""Hand-made test datasets for the eval tests, written straight with DatasetWriter following the
descriptor contract (BRIEF) and the token conventions (SPEC 3), with the forward transforms
written out here independently of augment/ and eval/."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hrm.builders.dataset import DatasetWriter, atomic_directory
from hrm.eval.predictions import PredictionWriter

ARC_SIDE = 30


def forward_dihedral(grid: np.ndarray, transform_id: int) -> np.ndarray:
    """SPEC 3.4 numbering, spelled out with numpy primitives."""
    return [lambda g: g, lambda g: np.rot90(g, 1), lambda g: np.rot90(g, 2), lambda g: np.rot90(g, 3),
            lambda g: g[:, ::-1], lambda g: g[::-1, :], lambda g: g.T,
            lambda g: np.rot90(g, 1)[:, ::-1]][transform_id](np.asarray(grid))


def arc_canvas(grid: np.ndarray, side: int = ARC_SIDE) -> np.ndarray:
    """SPEC 3 ARC tokens: colour + 2 at the top-left, end markers (1) below and right of the grid."""
    grid = np.asarray(grid)
    h, w = grid.shape
    canvas = np.zeros((side, side), np.uint8)
    canvas[:h, :w] = grid + 2
    if h < side:
        canvas[h, :w] = 1
    if w < side:
        canvas[:h, w] = 1
    return canvas.reshape(-1)


def arc_version(grid: np.ndarray, transform_id: int, colour_map: np.ndarray) -> np.ndarray:
    """An original-frame grid as the version (dihedral, colour map) sees it."""
    return forward_dihedral(np.asarray(colour_map)[np.asarray(grid)], transform_id)


@dataclass
class ArcTask:
    name: str
    test_outputs: list[np.ndarray]                  # original-frame answers, one per test pair
    versions: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (dihedral, colour map)


def random_arc_tasks(rng: np.random.Generator, num_tasks: int, versions: int,
                     pairs: tuple[int, ...] = (1, 2)) -> list[ArcTask]:
    tasks = []
    for t in range(num_tasks):
        outputs = []
        for _ in range(int(rng.choice(pairs))):
            h, w = rng.integers(1, 8, size=2)
            outputs.append(rng.integers(0, 10, size=(h, w)).astype(np.uint8))
        identity = (0, np.arange(10, dtype=np.uint8))
        kept = [identity]
        while len(kept) < versions:
            colour_map = np.concatenate([[0], rng.permutation(9) + 1]).astype(np.uint8)
            candidate = ((len(kept) + t) % 8, colour_map)  # every dihedral id across the tasks
            if not any(c[0] == candidate[0] and (c[1] == candidate[1]).all() for c in kept):
                kept.append(candidate)
        tasks.append(ArcTask(f"{t:08x}", outputs, kept))
    return tasks


def write_arc_dataset(path, tasks: list[ArcTask], side: int = ARC_SIDE) -> None:
    """Test split only: one group per task, one puzzle per version, the test pairs in order.
    Inputs are the outputs' canvases too (eval never reads ARC inputs)."""
    with atomic_directory(path) as tmp:
        writer = DatasetWriter(tmp, task="arc", seed=0, builder={"hand_made": True})
        split = writer.split("test", seq_len=side * side, vocab_size=12)
        for task in tasks:
            labels, dihedral, maps, names = [], [], [], []
            for transform_id, colour_map in task.versions:
                for output in task.test_outputs:
                    labels.append(arc_canvas(arc_version(output, transform_id, colour_map), side))
                dihedral.append(transform_id)
                maps.append(colour_map)
                identity = transform_id == 0 and (colour_map == np.arange(10)).all()
                names.append(task.name if identity else
                             f"{task.name}_t{transform_id}_{''.join(str(int(c)) for c in colour_map)}")
            ids = writer.add_identifiers(names)
            labels = np.stack(labels)
            split.set("all").append(labels, labels, examples_per_puzzle=[len(task.test_outputs)] * len(names),
                                    puzzles_per_group=[len(names)], puzzle_identifiers=ids,
                                    puzzle_fields={"aug_dihedral": np.array(dihedral, np.uint8),
                                                   "aug_colour_map": np.stack(maps).astype(np.uint8)})
        writer.close()


def answer_rows(tasks: list[ArcTask], answer) -> list[tuple[int, np.ndarray, float]]:
    """(example row, tokens, q_halt 0.5) of every test pair of every version, in dataset order:
    `answer(task_index, truth)` is the original-frame grid predicted, mapped into each version."""
    rows = []
    for t, task in enumerate(tasks):
        for transform_id, colour_map in task.versions:
            for truth in task.test_outputs:
                rows.append((len(rows), arc_canvas(arc_version(answer(t, truth), transform_id, colour_map)), 0.5))
    return rows


def write_table(path, rows: list[tuple[int, np.ndarray, float]], seq_len: int, set_name: str = "all",
                signature: dict | None = None) -> None:
    """A predictions table from (example row, tokens, q_halt) triples."""
    with PredictionWriter(path, seq_len=seq_len, signature=signature, row_group_rows=7) as writer:
        if rows:
            examples, tokens, q_halt = zip(*rows)
            writer.write(set_name, np.array(examples), np.stack(tokens), np.array(q_halt, np.float32))


def write_grid_dataset(path, task: str, inputs: np.ndarray, labels: np.ndarray, *,
                       puzzles_per_group: list[int] | None = None, puzzle_fields: dict | None = None,
                       vocab_size: int = 11) -> None:
    """A sudoku or maze test split: one example per puzzle."""
    with atomic_directory(path) as tmp:
        writer = DatasetWriter(tmp, task=task, seed=0, builder={"hand_made": True})
        split = writer.split("test", seq_len=inputs.shape[1], vocab_size=vocab_size)
        split.set("all").append(inputs, labels, examples_per_puzzle=[1] * len(inputs),
                                puzzles_per_group=puzzles_per_group or [1] * len(inputs),
                                puzzle_fields=puzzle_fields or {})
        writer.close()
