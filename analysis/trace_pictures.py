"""The pictures of `hrm trace` (and `hrm show TRACE_DIR`), drawn from a trace folder's files.

- residuals.png: the forward residual of z_high and z_low against the update index, log scale,
  the median over the examples with the 25-75% band, segment boundaries dotted (the HRM paper's
  hierarchical-convergence figure);
- accuracy.png: exact and token accuracy of the decoded answer and the cells it changed, by update;
- pr.png: the participation ratio, trained against untrained, high against low, and by the number
  of items (pr_by_items);
- steps_<i>.png: example i's decoded grid after each update (or each z_high update, or each
  segment end, when there are more than MAX_PANELS), changed cells framed, cells breaking a
  sudoku rule (sudoku) or differing from the truth (maze, ARC) marked, the truth at the end.

Charts go through show.charts like every chart (matplotlib, imported when a chart is drawn; the
format from the file name: .png, .svg, .pdf); the step strips are grids, drawn by show.render_png
like every puzzle picture.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hrm.analysis.trace_report import read_example
from hrm.builders.dataset import Dataset, open_dataset
from hrm.common import HrmError
from hrm.eval.metrics import sudoku_conflicts
from hrm.show.render import Figure, Panel
from hrm.show.charts import new_figure, save_figure
from hrm.show.render_png import write_figure_picture
from hrm.show.views import grid_of

MAX_PANELS = 32
PANELS_PER_ROW = 8
STATE_COLOURS = {"high": "#0074D9", "low": "#FF4136"}


def _segment_lines(axis: Any, rows: list[dict[str, Any]]) -> None:
    ends = [row["update"] for i, row in enumerate(rows[:-1]) if rows[i + 1]["segment"] != row["segment"]]
    for end in ends:
        axis.axvline(end + 0.5, color="#999999", linestyle=":", linewidth=0.8)


def _title(summary: dict[str, Any]) -> str:
    p = summary["protocol"]
    return (f"{p['arch']}, {Path(p['checkpoint']).name}: {p['examples']} {p['split']} examples x "
            f"{p['segments']} segments")


def residual_chart(summary: dict[str, Any], path: str | os.PathLike) -> Path:
    rows = summary["residual_by_update"]
    figure, (axis,) = new_figure()
    for state in ("high", "low"):
        mine = [row for row in rows if row["state"] == state and row["residual_median"] > 0]
        if not mine:
            continue
        x = [row["update"] for row in mine]
        axis.fill_between(x, [row["residual_p25"] for row in mine], [row["residual_p75"] for row in mine],
                          color=STATE_COLOURS[state], alpha=0.2, linewidth=0)
        axis.plot(x, [row["residual_median"] for row in mine], marker=".", color=STATE_COLOURS[state],
                  label=f"z_{state} (median, 25-75%)")
    _segment_lines(axis, rows)
    axis.set_yscale("log")
    axis.set_xlabel("update (dotted: segment boundaries)")
    axis.set_ylabel("||z_u - z_(u-1)|| / ||z_(u-1)||")
    axis.set_title(_title(summary), fontsize=10)
    axis.legend(fontsize=8)
    return save_figure(figure, path, force=True)


def accuracy_chart(summary: dict[str, Any], path: str | os.PathLike) -> Path:
    rows = summary["accuracy_by_update"]
    x = [row["update"] for row in rows]
    figure, (axis,) = new_figure()
    for key, colour in (("exact", "#0074D9"), ("token_accuracy", "#2ECC40")):
        values = [np.nan if row[key] is None else row[key] for row in rows]
        if not np.isnan(values).all():
            axis.plot(x, values, color=colour, label=key.replace("_", " "))
    axis.set_ylim(-0.02, 1.02)
    axis.set_ylabel("accuracy of the decoded answer")
    changed = axis.twinx()
    changed.plot(x, [row["changed"] for row in rows], color="#FF851B", linewidth=0.8, label="cells changed")
    changed.set_ylabel("cells changed (mean)")
    _segment_lines(axis, rows)
    axis.set_xlabel("update (dotted: segment boundaries)")
    scored = summary["protocol"].get("scored", True)
    axis.set_title(_title(summary) + ("" if scored else " (no solutions: accuracy not scored)"), fontsize=10)
    handles = axis.get_legend_handles_labels()[0] + changed.get_legend_handles_labels()[0]
    axis.legend(handles=handles, fontsize=8, loc="center right")
    return save_figure(figure, path, force=True)


def pr_chart(summary: dict[str, Any], path: str | os.PathLike) -> Path:
    ratio, by_items = summary["participation_ratio"], summary["pr_by_items"]
    figure, (bars, curves) = new_figure(1, 2)
    for offset, (which, hatch) in enumerate((("trained", ""), ("untrained", "//"))):
        values = [np.nan if ratio[which][s] is None else ratio[which][s] for s in ("high", "low")]
        bars.bar(np.arange(2) + (offset - 0.5) * 0.38, values, width=0.36, hatch=hatch,
                 color=[STATE_COLOURS["high"], STATE_COLOURS["low"]], edgecolor="black", label=which)
        for state, style in (("high", "-"), ("low", "--")):
            values = [np.nan if v is None else v for v in by_items[which][state]]
            curves.plot(by_items["items"], values, style, marker="o", color=STATE_COLOURS[state],
                        alpha=1.0 if which == "trained" else 0.45, label=f"z_{state}, {which}")
    bars.set_xticks(range(2), ["z_high", "z_low"])
    bars.set_ylabel("participation ratio")
    bars.set_title("trained (plain) vs untrained (hatched)", fontsize=10)
    curves.set_xscale("log")
    curves.set_xlabel("items (nested subsets)")
    curves.set_title("by the number of distinct items", fontsize=10)
    curves.legend(fontsize=8)
    figure.suptitle(_title(summary), fontsize=10)
    return save_figure(figure, path, force=True)


def shown_updates(states: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """The updates a strip shows: all of them, else the z_high updates, else the segment ends
    (evenly spaced, the last kept), at most MAX_PANELS."""
    every = np.arange(len(states))
    if len(every) <= MAX_PANELS:
        return every
    high = every[states == "high"]
    if len(high) <= MAX_PANELS:
        return high
    ends = every[np.append(segments[1:] != segments[:-1], True)]
    return ends[np.unique(np.linspace(0, len(ends) - 1, MAX_PANELS).round().astype(int))]


def _differs(grid: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Cells of `grid` that differ from `other` or lie outside it (ARC grids change shape)."""
    out = np.ones(grid.shape, bool)
    h, w = min(grid.shape[0], other.shape[0]), min(grid.shape[1], other.shape[1])
    out[:h, :w] = grid[:h, :w] != other[:h, :w]
    return out


def step_figure(folder: str | os.PathLike, summary: dict[str, Any], dataset: Dataset, index: int) -> Figure:
    """Example `index` (a row of the split's first set) after each shown update, then the truth."""
    split = dataset.split(summary["protocol"]["split"])
    puzzle_set = split.set(split.set_names[0])
    rows = read_example(folder, puzzle_set.name, index)
    if rows is None:
        raise HrmError(f"example {index} of {split.name}/{puzzle_set.name} was not traced in {folder}; trace it "
                       f"with --index {index}")
    task = dataset.task
    inputs, labels = (row[0] for row in puzzle_set.rows(index, index + 1))
    tokens = np.stack(rows.column("prediction").to_numpy(zero_copy_only=False)).astype(np.uint8)
    states = rows.column("state").to_numpy(zero_copy_only=False)
    segments, steps = rows.column("segment").to_numpy(), rows.column("step").to_numpy()
    modules = rows.column("module").to_numpy(zero_copy_only=False)
    grid_in, truth = grid_of(task, inputs), grid_of(task, labels)
    clues = grid_in > 0 if task == "sudoku" else None
    scored = (labels != split.attrs.get("ignore_label_id")).reshape(truth.shape) if task != "arc" else None
    panels = [Panel("input", task, grid_in, clues=clues)]
    previous = None
    for u in shown_updates(states, segments):
        grid = grid_of(task, tokens[u])
        if task == "sudoku":
            wrong = sudoku_conflicts(tokens[u][None], inputs[None])[0].reshape(grid.shape)
        elif split.has_solutions:
            wrong = _differs(grid, truth)
            if scored is not None and grid.shape == truth.shape:
                wrong &= scored
        else:
            wrong = None
        changed = None if previous is None else _differs(grid, previous)
        panels.append(Panel(f"{segments[u]}.{steps[u]} {modules[u]}", task, grid, clues=clues, wrong=wrong,
                            changed=changed))
        previous = grid
    if split.has_solutions:
        panels.append(Panel("truth", task, truth, clues=clues))
    exact = rows.column("exact").to_pylist()
    wrong_means = "red: breaks a sudoku rule" if task == "sudoku" else "crossed: differs from the truth"
    notes = [f"panel title: segment.update module; violet frame: changed since the panel before; {wrong_means}",
             _verdict(exact, segments)]
    figure_rows = [panels[i:i + PANELS_PER_ROW] for i in range(0, len(panels), PANELS_PER_ROW)]
    return Figure(f"{task} {split.name}[{index}]: the decoded answer update by update", figure_rows, notes)


def _verdict(exact: list[bool | None], segments: np.ndarray) -> str:
    if not exact or exact[-1] is None:
        return "not scored (the split has no solutions)"
    if not exact[-1]:
        return f"wrong at the last update ({len(exact)})"
    wrong = [u for u, value in enumerate(exact) if not value]
    settled = wrong[-1] + 1 if wrong else 0  # the first update after the last wrong one
    return f"right from update {settled + 1} (segment {segments[settled]}) to the end"


def draw_all(folder: str | os.PathLike, summary: dict[str, Any], index: Sequence[int] = (),
             data: Dataset | str | os.PathLike | None = None) -> list[Path]:
    """Every picture of a trace folder, (re)drawn in it; the strips need the dataset (default:
    the one the summary names)."""
    folder = Path(folder)
    strips = []
    if index:  # first, so that an example that was not traced stops before anything is redrawn
        dataset = data if isinstance(data, Dataset) else open_dataset(data or summary["protocol"]["data"])
        strips = [(i, step_figure(folder, summary, dataset, i)) for i in index]
    written = [residual_chart(summary, folder / "residuals.png"), accuracy_chart(summary, folder / "accuracy.png"),
               pr_chart(summary, folder / "pr.png")]
    return written + [write_figure_picture(figure, folder / f"steps_{i}.png", force=True) for i, figure in strips]
