"""`hrm show`: renderings of known small examples (text and PNG), predictions, training curves.

Expected text is written out by hand below; PNG checks read pixels back with Pillow at cells
whose positions follow from the documented geometry (cell size, line widths, margins). Charts
are checked on the matplotlib figure: the points of each line, the axes' scales.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from hrm.builders.dataset import DatasetWriter, atomic_directory
from hrm.show.render import Panel, figure_text, maze_text, sudoku_text
from hrm.show.views import arc_task_figure, example_figure
from tests.conftest import assert_one_line_error, run_hrm

PIL = pytest.importorskip("PIL.Image")

PUZZLE = ("530070000600195000098000060800060003400803001700020006060000280000419005000080079")
SOLUTION = ("534678912672195348198342567859761423426853791713924856961537284287419635345286179")
MAZE_IN = ["######",
           "#S   #",
           "#### #",
           "#G   #",
           "#    #",
           "######"]
MAZE_OUT = ["######",
            "#Sooo#",
            "####o#",
            "#Gooo#",
            "#    #",
            "######"]
ARC_HEX = {0: (0, 0, 0), 1: (0, 0x74, 0xD9), 2: (0xFF, 0x41, 0x36), 3: (0x2E, 0xCC, 0x40), 4: (0xFF, 0xDC, 0),
           5: (0xAA, 0xAA, 0xAA), 6: (0xF0, 0x12, 0xBE), 7: (0xFF, 0x85, 0x1B), 8: (0x7F, 0xDB, 0xFF),
           9: (0x87, 0x0C, 0x25)}


# ----------------------------------------------------------------------------- fixtures


def sudoku_tokens(text: str) -> np.ndarray:
    return np.array([int(ch) + 1 for ch in text], np.uint8)  # SPEC 3: token = digit + 1, blank 1


def maze_tokens(rows: list[str]) -> np.ndarray:
    return np.array(["# SGo".index(ch) + 1 for row in rows for ch in row], np.uint8)


def arc_canvas(grid, offset=(0, 0), side=30) -> np.ndarray:
    """SPEC 3 ARC encoding: colour + 2 at the offset, end markers (1) below and right of the grid."""
    grid = np.asarray(grid)
    h, w = grid.shape
    r0, c0 = offset
    canvas = np.zeros((side, side), np.uint8)
    canvas[r0:r0 + h, c0:c0 + w] = grid + 2
    if r0 + h < side:
        canvas[r0 + h, c0:c0 + w] = 1
    if c0 + w < side:
        canvas[r0:r0 + h, c0 + w] = 1
    return canvas.ravel()


def write_sudoku(path, has_solutions: bool = True):
    with atomic_directory(path) as tmp:
        writer = DatasetWriter(tmp, task="sudoku", seed=0, builder={})
        inputs, labels = sudoku_tokens(PUZZLE)[None], sudoku_tokens(SOLUTION if has_solutions else "0" * 81)[None]
        split = writer.split("test", seq_len=81, vocab_size=11, **({} if has_solutions else {"has_solutions": False}))
        split.set().append(np.repeat(inputs, 2, 0), np.repeat(labels, 2, 0), examples_per_puzzle=[1, 1],
                           puzzles_per_group=[2])
        writer.close()


def write_maze(path):
    with atomic_directory(path) as tmp:
        writer = DatasetWriter(tmp, task="maze", seed=0, builder={"size": 6})
        split = writer.split("test", seq_len=36, vocab_size=6)
        split.set().append(maze_tokens(MAZE_IN)[None], maze_tokens(MAZE_OUT)[None], examples_per_puzzle=[1],
                           puzzles_per_group=[1])
        writer.close()


# ARC task "aaaa0001" (an evaluation task): two train pairs (the second translated) and one test
# pair; plus a rot90 + colour-swap (1 <-> 2) version and a rot180 version. Task "bbbb0002" (a
# training task) has one pair, in the train split.
ARC_TRAIN = [([[1, 0], [0, 0]], [[2, 2], [2, 0]]), ([[0, 3, 3]], [[4, 4, 4]])]
ARC_TEST = ([[1, 1, 0], [0, 0, 5]], [[2, 2, 0], [0, 0, 6]])
IDENTITY = np.arange(10, dtype=np.uint8)
SWAP_1_2 = np.array([0, 2, 1, 3, 4, 5, 6, 7, 8, 9], np.uint8)
ARC_VERSIONS = [(0, IDENTITY), (1, SWAP_1_2), (2, IDENTITY)]


def _version(grid, dihedral, colour_map):
    return np.rot90(colour_map[np.asarray(grid)], k=dihedral)


def write_arc(path):
    with atomic_directory(path) as tmp:
        writer = DatasetWriter(tmp, task="arc", seed=0, builder={})
        ids = writer.add_identifiers(["aaaa0001", "aaaa0001_t1_0213456789", "aaaa0001_t2_0123456789", "bbbb0002"])
        fields = {"aug_dihedral": np.array([d for d, _ in ARC_VERSIONS] + [0], np.uint8),
                  "aug_colour_map": np.stack([m for _, m in ARC_VERSIONS] + [IDENTITY])}
        train = writer.split("train", seq_len=900, vocab_size=12)
        rows_in, rows_out = [], []
        for d, cmap in ARC_VERSIONS:
            for k, (a, b) in enumerate(ARC_TRAIN):
                offset = (0, 0) if k == 0 else (4, 7)
                rows_in.append(arc_canvas(_version(a, d, cmap), offset))
                rows_out.append(arc_canvas(_version(b, d, cmap), offset))
        rows_in.append(arc_canvas([[7]]))
        rows_out.append(arc_canvas([[8, 8]]))
        train.set().append(np.stack(rows_in), np.stack(rows_out), examples_per_puzzle=[2, 2, 2, 1],
                           puzzles_per_group=[3, 1], puzzle_identifiers=ids, puzzle_fields=fields)
        test = writer.split("test", seq_len=900, vocab_size=12)
        a, b = ARC_TEST
        test.set().append(np.stack([arc_canvas(_version(a, d, m)) for d, m in ARC_VERSIONS]),
                          np.stack([arc_canvas(_version(b, d, m)) for d, m in ARC_VERSIONS]),
                          examples_per_puzzle=[1, 1, 1], puzzles_per_group=[3], puzzle_identifiers=ids[:3],
                          puzzle_fields={k: v[:3] for k, v in fields.items()})
        writer.close()


def write_predictions(path, rows):
    """rows: (set, example, tokens, q_halt) -> a Parquet table as SPEC 6 describes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"set": [r[0] for r in rows], "example": pa.array([r[1] for r in rows], pa.int64()),
                      "prediction": pa.array([list(map(int, r[2])) for r in rows], pa.list_(pa.uint8())),
                      "q_halt": pa.array([r[3] for r in rows], pa.float32())})
    pq.write_table(table, path)


# ----------------------------------------------------------------------------- text


def test_sudoku_text_plain_and_ansi_marks_clues_and_wrong_cells():
    digits = np.array([int(c) for c in SOLUTION]).reshape(9, 9)
    clues = np.array([c != "0" for c in PUZZLE]).reshape(9, 9)
    assert sudoku_text(digits).splitlines()[:4] == [
        "5 3 4 | 6 7 8 | 9 1 2",
        "6 7 2 | 1 9 5 | 3 4 8",
        "1 9 8 | 3 4 2 | 5 6 7",
        "------+-------+------"]
    wrong = np.zeros((9, 9), bool)
    wrong[0, 2] = True
    first = sudoku_text(digits, clues, wrong, colour=True).splitlines()[0]
    b, cyan, red, end = "\x1b[1m", "\x1b[36m", "\x1b[41;97m", "\x1b[0m"
    assert first == (f"{b}5{end} {b}3{end} {red}4{end} | {cyan}6{end} {b}7{end} {cyan}8{end} | "
                     f"{cyan}9{end} {cyan}1{end} {cyan}2{end}")


def test_maze_text_characters_and_colours():
    grid = maze_tokens(MAZE_OUT).reshape(6, 6)
    assert maze_text(grid) == "\n".join(MAZE_OUT)
    line = maze_text(grid, colour=True).splitlines()[1]
    grey, green, yellow, end = "\x1b[90m", "\x1b[1;32m", "\x1b[1;33m", "\x1b[0m"
    assert line == f"{grey}#{end}{green}S{end}{yellow}o{end}{yellow}o{end}{yellow}o{end}{grey}#{end}"


def test_dataset_example_text_sudoku_and_maze(tmp_path):
    write_sudoku(tmp_path / "s")
    text = figure_text(example_figure(tmp_path / "s", "test", 1), colour=False)
    lines = text.splitlines()
    assert lines[0] == "sudoku test[1]"
    assert lines[2] == "input                    label"
    assert lines[3] == "5 3 . | . 7 . | . . .    5 3 4 | 6 7 8 | 9 1 2"
    assert lines[-1].startswith("30 clues")
    write_maze(tmp_path / "m")
    text = figure_text(example_figure(tmp_path / "m"), colour=False)
    rows = [line.rstrip() for line in text.splitlines()[3:9]]
    assert rows == [f"{a}    {b}".rstrip() for a, b in zip(MAZE_IN, MAZE_OUT)]
    assert "path: 7 cells" in text


def test_arc_task_shows_original_pairs_decoded_from_translated_canvases(tmp_path):
    write_arc(tmp_path / "a")
    figure = arc_task_figure(tmp_path / "a", "aaaa0001")
    assert figure.title == "ARC task aaaa0001: 2 train-split pairs, 1 test-split pair"
    pairs = [(p[0].grid.tolist(), p[1].grid.tolist()) for p in figure.rows]
    assert pairs == [*ARC_TRAIN, ARC_TEST]
    text = figure_text(figure, colour=False)
    assert "train pair 2 input    output\n0 3 3                 4 4 4" in text
    # an augmented version is found by its own name and shows that version's grids
    version = arc_task_figure(tmp_path / "a", "aaaa0001_t1_0213456789")
    assert version.rows[0][0].grid.tolist() == np.rot90(SWAP_1_2[np.array(ARC_TRAIN[0][0])]).tolist()
    colour = figure_text(figure, colour=True)
    assert "\x1b[48;5;32m  \x1b[0m" in colour  # colour 1 (blue) as a 256-colour block


def test_cli_show_dataset_plain_when_not_a_tty(tmp_path):
    write_arc(tmp_path / "a")
    result = run_hrm("show", tmp_path / "a", "--split", "train", "--index", "6", check=True)
    assert "\x1b[" not in result.stdout
    assert result.stdout.splitlines()[0] == "arc train[6]  puzzle bbbb0002, pair 1"
    assert "7        8 8" in result.stdout
    result = run_hrm("show", tmp_path / "a", "--task", "aaaa0001", "--json", check=True)
    shown = json.loads(result.stdout)
    assert [[p["grid"] for p in row] for row in shown["rows"]][2] == [ARC_TEST[0], ARC_TEST[1]]


# ----------------------------------------------------------------------------- PNG


def _near(pixel, expected, tolerance=0):
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected))


def test_arc_panel_png_size_palette_and_grid_lines():
    from hrm.show.render_png import panel_image

    grid = np.arange(10).reshape(2, 5)
    image = panel_image(Panel("", "arc", grid))
    cell, line = 16, 1  # documented ARC geometry
    assert image.size == (5 * cell + 6 * line, 2 * cell + 3 * line)
    for r in range(2):
        for c in range(5):
            x, y = line + c * (cell + line) + cell // 2, line + r * (cell + line) + cell // 2
            assert image.getpixel((x, y)) == ARC_HEX[grid[r, c]]
    assert image.getpixel((0, 0)) == (0x55, 0x55, 0x55)
    assert image.getpixel((cell + 1, 5)) == (0x55, 0x55, 0x55)  # the line between cells 0 and 1


def test_wrong_arc_cell_is_crossed_but_keeps_its_colour():
    from hrm.show.render_png import panel_image

    wrong = np.array([[False, True]])
    image = panel_image(Panel("", "arc", np.array([[2, 2]]), wrong=wrong))
    right_cell = [image.getpixel((1 + x, 1 + y)) for x in range(16) for y in range(16)]
    wrong_cell = [image.getpixel((18 + x, 1 + y)) for x in range(16) for y in range(16)]
    assert set(right_cell) == {ARC_HEX[2]}
    assert (255, 255, 255) in wrong_cell and image.getpixel((18 + 1, 1 + 8)) == ARC_HEX[2]


def test_sudoku_panel_png_clues_filled_and_wrong_cells():
    from hrm.show.render_png import panel_image

    digits = np.array([int(c) for c in SOLUTION]).reshape(9, 9)
    clues = np.array([c != "0" for c in PUZZLE]).reshape(9, 9)
    wrong = np.zeros((9, 9), bool)
    wrong[0, 3] = True
    image = panel_image(Panel("", "sudoku", digits, clues=clues, wrong=wrong))
    cell = 32
    # lines: 3 px at box boundaries (0, 3, 6, 9), 1 px elsewhere
    origin = [3 + c * cell + (c - c // 3) + 3 * (c // 3) for c in range(9)]
    assert image.size == (9 * cell + 6 + 12,) * 2
    assert image.getpixel((1, 100)) == (0, 0, 0)  # thick border

    def pixels(r, c):
        return [image.getpixel((origin[c] + x, origin[r] + y)) for x in range(cell) for y in range(cell)]

    clue, filled, bad = pixels(0, 0), pixels(0, 2), pixels(0, 3)  # 5 is a clue, 4 filled, 6 wrong
    assert clue[0] == (0xE4, 0xE4, 0xE4) and (0, 0, 0) in clue
    assert filled[0] == (255, 255, 255) and any(_near(p, (0, 0x74, 0xD9), 8) for p in filled)
    assert bad[0] == (0xFF, 0xC8, 0xC8) and any(_near(p, (0xC0, 0, 0), 8) for p in bad)
    assert not any(_near(p, (0, 0x74, 0xD9), 40) for p in clue)


def test_cli_png_of_maze_example(tmp_path):
    from hrm.show.render_png import MARGIN, TITLE_HEIGHT

    write_maze(tmp_path / "m")
    run_hrm("show", tmp_path / "m", "--png", tmp_path / "m.png", check=True)
    image = PIL.open(tmp_path / "m.png").convert("RGB")
    cell = 12
    # title line, then the panel titles, then the input panel at the left margin (1 px frame)
    x0, y0 = MARGIN + 1, MARGIN + 2 * TITLE_HEIGHT + 1
    assert image.getpixel((x0 - 1, y0 + 5)) == (0x88, 0x88, 0x88)
    colours = {"#": (0x2B, 0x2B, 0x2B), " ": (255, 255, 255), "S": ARC_HEX[3], "G": ARC_HEX[2], "o": ARC_HEX[7]}
    for r, row in enumerate(MAZE_IN):
        for c, ch in enumerate(row):
            assert image.getpixel((x0 + c * cell + 6, y0 + r * cell + 6)) == colours[ch]
    x1 = x0 + 6 * cell + 1 + 16 + 1  # the label panel, one GAP to the right
    assert image.getpixel((x1 + 2 * cell + 6, y0 + cell + 6)) == colours["o"]
    assert image.width >= x1 + 6 * cell + MARGIN


# ----------------------------------------------------------------------------- predictions


def test_predictions_sudoku_marks_wrong_cells(tmp_path):
    write_sudoku(tmp_path / "s")
    wrong = sudoku_tokens(SOLUTION)
    wrong[[0, 40]] = [2, 2]  # cells (0,0) = clue 5 and (4,4) = filled 5 both predicted as 1
    write_predictions(tmp_path / "p.parquet", [("all", 0, sudoku_tokens(SOLUTION), 3.0), ("all", 1, wrong, -1.0)])
    ok = run_hrm("show", "--predictions", tmp_path / "p.parquet", "--data", tmp_path / "s", check=True)
    assert "exact; q_halt logit 3.000" in ok.stdout
    bad = run_hrm("show", "--predictions", tmp_path / "p.parquet", "--data", tmp_path / "s", "--index", "1",
                  "--png", tmp_path / "p.png", check=True)
    assert "2 of 81 cells wrong" in bad.stdout
    header = [line for line in bad.stdout.splitlines() if line.startswith("input")][0]
    assert header.split() == ["input", "truth", "prediction", "wrong"]
    marks = bad.stdout.splitlines()[3 + 5]  # the fifth grid row (after a band rule)
    assert marks.endswith(". . . | . X . | . . .")
    assert PIL.open(tmp_path / "p.png").size[0] > 3 * 306


def test_predictions_without_solutions_mark_no_cell(tmp_path):
    write_sudoku(tmp_path / "s", has_solutions=False)
    wrong = sudoku_tokens(SOLUTION)
    wrong[[0, 40]] = [2, 2]
    write_predictions(tmp_path / "p.parquet", [("all", 0, wrong, 1.0)])
    result = run_hrm("show", "--predictions", tmp_path / "p.parquet", "--data", tmp_path / "s", check=True)
    header = [line for line in result.stdout.splitlines() if line.startswith("input")][0]
    assert header.split() == ["input", "prediction"]  # no truth, no wrong-cell marks
    assert "no solution to compare" in result.stdout and "wrong" not in result.stdout


def test_predictions_maze_marks_the_missed_path_cell(tmp_path):
    from hrm.eval.show import prediction_figure

    write_maze(tmp_path / "m")
    predicted = [row.replace("#Gooo#", "#Goo #") for row in MAZE_OUT]  # one path cell missed
    write_predictions(tmp_path / "p.parquet", [("all", 0, maze_tokens(predicted), 0.0)])
    figure = prediction_figure(tmp_path / "p.parquet", tmp_path / "m")
    truth, prediction = figure.rows[0]
    assert (truth.title, prediction.title) == ("truth", "prediction")
    assert np.argwhere(prediction.wrong).tolist() == [[3, 4]]
    assert figure.notes == ["1 of 36 cells wrong; q_halt logit 0.000"]
    assert figure_text(figure, colour=False).splitlines()[3 + 3].split() == ["#Gooo#", "#Goo", "#", "....X."]


def test_predictions_arc_top2_voted_in_original_frame(tmp_path):
    write_arc(tmp_path / "a")
    a, b = ARC_TEST
    wrong_answer = np.array(b)
    wrong_answer[0, 0] = 3
    # The original version answers wrong but most confidently; the two augmented versions answer
    # right (in their own frames): two votes beat one, so attempt 1 is right and attempt 2 wrong.
    answers = [(wrong_answer, 3.0), (np.array(b), 0.5), (np.array(b), 0.1)]
    write_predictions(tmp_path / "p.parquet", [
        ("all", row, arc_canvas(_version(answer, *ARC_VERSIONS[row])), q)
        for row, (answer, q) in enumerate(answers)])
    result = run_hrm("show", "--predictions", tmp_path / "p.parquet", "--data", tmp_path / "a",
                     "--task", "aaaa0001", "--json", check=True)
    shown = json.loads(result.stdout)
    panels = shown["rows"][0]
    assert [p["grid"] for p in panels] == [a, b, b, wrong_answer.tolist()]
    assert panels[2]["title"] == "attempt 1: 2 votes, right" and panels[2]["wrong_cells"] == 0
    assert panels[3]["title"] == "attempt 2: 1 vote" and panels[3]["wrong_cells"] == 1
    assert shown["notes"][0].startswith("1 of 1 test pairs solved within 2 attempts; 3 of 3 versions")
    # --index of an augmented row finds the same task and pair; text marks the wrong cell
    by_row = run_hrm("show", "--predictions", tmp_path / "p.parquet", "--data", tmp_path / "a",
                     "--index", "2", check=True)
    lines = by_row.stdout.splitlines()
    assert lines[0] == "ARC task aaaa0001: predictions"
    assert lines[3].split() == ["1", "1", "0", "2", "2", "0", "2", "2", "0", ".", ".", ".", "3", "2", "0",
                                "X", ".", "."]


# ----------------------------------------------------------------------------- curves


def _metrics(run, records, tail=""):
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + tail)


def _record(step, split, k):
    return {"step": step, "split": split, "lr": 1e-4 * min(1, step / 20), "lm_loss": 2.0 / (1 + k),
            "q_halt_loss": 0.5 / (1 + k), "q_continue_loss": 0.25 / (1 + k), "accuracy": k / (k + 3),
            "exact_accuracy": k / (k + 9), "q_halt_accuracy": 0.5, "steps": 8 - k % 4,
            "examples_per_s": 100.0 + k, "time": 1.5 * step}


def _drawn(ax) -> dict[str, list[tuple[float, float]]]:
    """{label: [(x, y), ...]} of the lines drawn on a matplotlib Axes."""
    return {line.get_label(): [tuple(map(float, xy)) for xy in line.get_xydata()] for line in ax.get_lines()}


def test_curves_png_and_last_values(tmp_path):
    from hrm.analysis.curves import curves_figure
    from hrm.show.charts import is_hrm_picture

    records = [_record(10 * k, "train", k) for k in range(1, 11)]
    records += [_record(50, "test", 4), _record(100, "test", 9)]
    _metrics(tmp_path / "run", records, tail='{"step": 110, "spl')  # a torn line while training
    result = run_hrm("show", tmp_path / "run", "--json", check=True)
    shown = json.loads(result.stdout)
    assert shown["last"]["train"] == _record(100, "train", 10)
    assert shown["last"]["test"] == _record(100, "test", 9)
    assert is_hrm_picture(tmp_path / "run" / "curves.png")
    losses, accuracy, steps, lr = curves_figure(records).axes
    assert _drawn(losses)["lm_loss (train)"] == [(10 * k, 2.0 / (1 + k)) for k in range(1, 11)]
    assert _drawn(losses)["q_halt_loss (test)"] == [(50, 0.5 / 5), (100, 0.5 / 10)]
    assert sorted(_drawn(accuracy)) == sorted(f"{m} ({s})" for m in ("accuracy", "exact_accuracy", "q_halt_accuracy")
                                              for s in ("train", "test"))
    assert _drawn(steps)["steps (test)"] == [(50, 8.0), (100, 7.0)] and list(_drawn(lr)) == ["lr (train)"]
    table = run_hrm("show", tmp_path / "run", "--png", tmp_path / "c.png", check=True).stdout.splitlines()
    assert table[0].split()[:4] == ["split", "step", "lr", "lm_loss"]
    last = _record(100, "train", 10)
    assert table[1].split()[:4] == ["train", "100", f"{last['lr']:.4g}", f"{last['lm_loss']:.4g}"]
    assert is_hrm_picture(tmp_path / "c.png")


def test_log_scale_where_the_values_span_decades():
    from hrm.analysis.curves import curves_figure
    from hrm.show.charts import use_log_scale

    assert use_log_scale([2.0, 0.01]) and not use_log_scale([2.0, 0.05]) and not use_log_scale([1.0, 0.0, 1e-5])
    # losses from 2 down to 2e-4 (4 decades): log; lr with warm-up from 1e-6 to 1e-3: log; accuracies,
    # steps: linear. The same run with lm_loss 2 -> 0.5 and a constant lr: every axis linear.
    spanning = [{"step": k, "split": "train", "lm_loss": 2.0 * 10 ** (-k / 5), "lr": 1e-6 * 10 ** min(3, k / 3),
                 "accuracy": k / 20, "steps": 4.0} for k in range(1, 21)]
    narrow = [{**r, "lm_loss": 2.0 - r["step"] * 0.075, "lr": 1e-4} for r in spanning]
    assert [ax.get_yscale() for ax in curves_figure(spanning).axes] == ["log", "linear", "linear", "log"]
    assert [ax.get_yscale() for ax in curves_figure(narrow).axes] == ["linear"] * 4


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_pictures_in_each_format_follow_the_output_rule(tmp_path, suffix):
    """A chart (a run's curves) and a grid (a dataset example) in each format: written as the
    suffix asks, recognised as hrm's, replaced with --force; a file that is not hrm's is refused."""
    from hrm.analysis.curves import plot_curves
    from hrm.common import HrmError
    from hrm.show.charts import is_hrm_picture
    from hrm.show.render_png import write_figure_picture

    magic = {".png": b"\x89PNG\r\n\x1a\n", ".svg": b"<?xml", ".pdf": b"%PDF-"}[suffix]
    records = [_record(10 * k, "train", k) for k in range(1, 5)] + [_record(40, "test", 3)]
    _metrics(tmp_path / "run", records)
    write_sudoku(tmp_path / "s")
    # through the command (in process, faster): the name's suffix picks the format
    from typer.testing import CliRunner

    from hrm.cli.app import app
    result = CliRunner().invoke(app, ["show", str(tmp_path / "run"), "--png", str(tmp_path / f"cli{suffix}"), "-q"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / f"cli{suffix}").read_bytes().startswith(magic)
    writers = {"curves": lambda path, force: plot_curves(records, path, force=force),
               "sudoku": lambda path, force: write_figure_picture(example_figure(tmp_path / "s", "test", 0), path,
                                                                  force=force)}
    for name, write in writers.items():
        picture = tmp_path / f"{name}{suffix}"
        write(picture, False)
        first = picture.read_bytes()
        assert first.startswith(magic) and is_hrm_picture(picture)
        with pytest.raises(HrmError, match="already exists; pass --force"):
            write(picture, False)
        write(picture, True)
        assert picture.read_bytes() == first  # replaced, by the same bytes: no dates in the picture
        foreign = tmp_path / f"{name}_foreign{suffix}"
        foreign.write_bytes(first.replace(b"hrm", b"xyz"))  # the same picture, another writer's mark
        assert not is_hrm_picture(foreign)
        with pytest.raises(HrmError, match="refusing to replace"):
            write(foreign, True)
        assert foreign.read_bytes() == first.replace(b"hrm", b"xyz")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no partial left


def test_a_picture_name_without_a_known_suffix_is_a_usage_error(tmp_path):
    from typer.testing import CliRunner

    from hrm.cli.app import app
    from hrm.common import UsageError

    _metrics(tmp_path / "run", [_record(10, "train", 1)])
    result = run_hrm("show", tmp_path / "run", "--png", tmp_path / "curves.jpg")
    assert result.returncode == 2
    assert_one_line_error(result, "curves.jpg", ".png, .svg or .pdf")
    for name in ("curves", "curves.png.txt"):  # in process (faster): the same check
        result = CliRunner().invoke(app, ["show", str(tmp_path / "run"), "--png", str(tmp_path / name)])
        assert isinstance(result.exception, UsageError) and ".png, .svg or .pdf" in str(result.exception)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["metrics.jsonl"]  # not even RUN/curves.png


def test_a_grid_as_svg_holds_the_png_raster(tmp_path):
    import base64
    import io
    import re

    from hrm.show.render_png import write_figure_picture

    write_sudoku(tmp_path / "s")
    figure = example_figure(tmp_path / "s", "test", 0)
    write_figure_picture(figure, tmp_path / "s.png")
    write_figure_picture(figure, tmp_path / "s.svg")
    embedded = re.search(rb'xlink:href="data:image/png;base64,([^"]+)"', (tmp_path / "s.svg").read_bytes())
    inner = PIL.open(io.BytesIO(base64.b64decode(embedded.group(1)))).convert("RGB")
    outer = PIL.open(tmp_path / "s.png").convert("RGB")
    # matplotlib stores the raster bottom row first, under a transform that flips it back
    assert inner.size == outer.size and inner.tobytes() == outer.transpose(PIL.Transpose.FLIP_TOP_BOTTOM).tobytes()


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_give_one_line(tmp_path):
    """Through the real CLI: missing directory, index out of range, unknown task."""
    write_sudoku(tmp_path / "s")
    write_arc(tmp_path / "a")
    assert_one_line_error(run_hrm("show", tmp_path / "nope"), "nope", "does not exist")
    assert_one_line_error(run_hrm("show", tmp_path / "s", "--index", "2"), "index 2 is out of range", "2 examples")
    assert_one_line_error(run_hrm("show", tmp_path / "a", "--task", "zzzz9999"), "no ARC task named 'zzzz9999'")


def test_more_bad_inputs_raise_clear_errors(tmp_path):
    """In process (faster): each raises HrmError, which the CLI prints as one line (tested above)."""
    from typer.testing import CliRunner

    from hrm.common import HrmError
    from hrm.cli.app import app

    write_sudoku(tmp_path / "s")
    (tmp_path / "empty").mkdir()
    _metrics(tmp_path / "run", [{"step": 1, "split": "train"}, "oops"])
    _metrics(tmp_path / "blank", [])
    (tmp_path / "p.parquet").write_text("not parquet")
    write_predictions(tmp_path / "q.parquet", [("all", 0, np.ones(81, np.uint8), 0.0)])
    write_predictions(tmp_path / "short.parquet", [("all", 0, np.ones(80, np.uint8), 0.0)])
    cases = [
        (["show", tmp_path / "s", "--split", "train"], "no split 'train'"),
        (["show", tmp_path / "s", "--task", "x"], "sudoku dataset"),
        (["show", tmp_path / "s", "--index", "-1"], "index -1 is out of range"),
        (["show", tmp_path / "s", "--index", "0", "--task", "x"], "not both"),
        (["show", tmp_path / "empty"], "neither a dataset"),
        (["show", tmp_path / "run"], "metrics.jsonl, line 2"),
        (["show", tmp_path / "blank"], "no metrics yet"),
        (["show", tmp_path / "run", "--index", "1"], "run directory"),
        (["show", "--predictions", tmp_path / "p.parquet", "--data", tmp_path / "s"], "not a readable Parquet"),
        (["show", "--predictions", tmp_path / "missing.parquet", "--data", tmp_path / "s"], "does not exist"),
        (["show", "--predictions", tmp_path / "q.parquet", "--data", tmp_path / "s", "--index", "1"],
         "no prediction for test/all example 1"),
        (["show", "--predictions", tmp_path / "short.parquet", "--data", tmp_path / "s"], "seq_len is 81"),
        (["show", "--predictions", tmp_path / "q.parquet"], "needs --data"),
        (["show", tmp_path / "s", "--png", tmp_path / "empty"], "is a folder"),
    ]
    runner = CliRunner()
    for args, fragment in cases:
        result = runner.invoke(app, [str(a) for a in args])
        assert isinstance(result.exception, HrmError), (args, result.output, result.exception)
        assert fragment in str(result.exception) and "\n" not in str(result.exception), (args, result.exception)


def test_inspect_and_show_refuse_an_index_out_of_range_alike(tmp_path):
    """One rule for both commands: a negative index and one past the end are refused with the
    same one line and exit code (inspect used to raise IndexError and to clamp 99999 to the last row)."""
    from typer.testing import CliRunner

    from hrm.common import HrmError
    from hrm.cli.app import app

    write_sudoku(tmp_path / "s")
    runner = CliRunner()
    for index in ("-1", "2", "99999"):
        messages = []
        for command in ("inspect", "show"):
            result = runner.invoke(app, [command, str(tmp_path / "s"), "--index", index])
            assert isinstance(result.exception, HrmError), (command, index, result.output, result.exception)
            messages.append(str(result.exception))
        assert messages[0] == messages[1] and f"index {index} is out of range" in messages[0], messages
    assert runner.invoke(app, ["inspect", str(tmp_path / "s"), "--index", "1"]).exit_code == 0


@pytest.mark.slow  # ~30 s (the ARC build); test_arc_task_shows_original_pairs... covers the decoding fast
def test_arc_task_from_the_real_builder_matches_the_json(tmp_path, shared_arc):
    """Against the ARC builder itself: every pair shown equals the task's JSON (translated
    train canvases included), train pairs from the train split and the test pair from the test split."""
    name = "00576224"
    task = json.loads((shared_arc / "arc-agi_evaluation_challenges.json").read_text())[name]
    solutions = json.loads((shared_arc / "arc-agi_evaluation_solutions.json").read_text())[name]
    (tmp_path / "src" / "evaluation").mkdir(parents=True)
    task["test"] = [{"input": p["input"], "output": s} for p, s in zip(task["test"], solutions)]
    (tmp_path / "src" / "evaluation" / f"{name}.json").write_text(json.dumps(task))
    run_hrm("build-data", "arc", "--out", tmp_path / "arc", "--input", tmp_path / "src", "--subsets", "evaluation",
            "--aug", "3", "--quiet", check=True)
    shown = json.loads(run_hrm("show", tmp_path / "arc", "--task", name, "--json", check=True).stdout)
    expected = [[p["input"], p["output"]] for p in task["train"] + task["test"]]
    assert [[panel["grid"] for panel in row] for row in shown["rows"]] == expected
    assert [row[0]["title"].split()[0] for row in shown["rows"]] == ["train"] * len(task["train"]) + ["test"]
