"""`hrm compare RUN...` on run folders written by hand (config.yaml + metrics.jsonl): the keys
that differ, the final and best metrics, wall time and throughput against the numbers written
here, the table, the JSON, the CSV and the PNG; bad inputs as one-line errors. One test compares
two real tiny runs."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from conftest import assert_one_line_error, run_hrm

# Two configs as `hrm train` saves them (a few keys suffice: the arch mapping makes it a run).
BASE = {"data_path": "data/s9", "global_batch_size": 64, "lr": 1.0e-4, "seed": 0, "ema": False,
        "max_steps": None, "arch": {"name": "hrm", "H_cycles": 2, "L_cycles": 2, "hidden_size": 64}}


def make_run(folder: Path, config: dict, records: list[dict], tail: str = "") -> Path:
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + tail)
    return folder


def train_line(step: int, time: float, lm_loss: float, examples_per_s: float, peak_mib: int | None = None) -> dict:
    peak = {} if peak_mib is None else {"peak_memory": peak_mib << 20}  # older runs log no peak
    return {"step": step, "split": "train", "lr": 1e-4, "lm_loss": lm_loss, "accuracy": 0.5,
            "exact_accuracy": 0.0, "steps": 3.0, "count": 64, "examples_per_s": examples_per_s, **peak, "time": time}


def eval_line(step: int, time: float, exact: float, accuracy: float, **more) -> dict:
    return {"step": step, "split": "test", "count": 40, "accuracy": accuracy, "exact_accuracy": exact,
            **more, "time": time}



# Run A: the best exact accuracy (0.75) at step 20, a worse last evaluation at 30; its peak memory
# is the largest logged, 150 MiB (the last line's is lower: a resumed process starts afresh).
RECORDS_A = [train_line(10, 4.0, 2.0, 100.0, 100), eval_line(10, 5.0, 0.5, 0.8, q_halt_accuracy=0.7, steps=4.0),
             train_line(20, 9.0, 1.5, 200.0, 150), eval_line(20, 10.0, 0.75, 0.9, q_halt_accuracy=0.8, steps=4.0),
             train_line(30, 14.0, 1.0, 300.0, 120), eval_line(30, 15.5, 0.6, 0.95, q_halt_accuracy=0.9, steps=3.5)]
# Run B: the best exact accuracy 0.25 reached twice (first at step 10), and a run that was resumed
# under a log whose clock restarted: 10 + 12 seconds.
RECORDS_B = [train_line(10, 5.0, 2.5, 50.0), eval_line(10, 10.0, 0.25, 0.6),
             train_line(20, 4.0, 2.0, 70.0), eval_line(20, 12.0, 0.25, 0.7)]


@pytest.fixture
def runs(tmp_path) -> list[Path]:
    b = {**BASE, "seed": 1, "arch": {**BASE["arch"], "H_cycles": 3}}
    c = {k: v for k, v in BASE.items() if k not in ("ema", "max_steps")}  # an older hrm: no such keys
    c = {**c, "data_path": "data/s9b", "arch": {**BASE["arch"], "damping": 0.9}}
    return [make_run(tmp_path / "a", BASE, RECORDS_A),
            make_run(tmp_path / "b", b, RECORDS_B),
            make_run(tmp_path / "c", c, [train_line(10, 3.0, 2.2, 80.0)],
                     tail='{"step": 20, "split": "tra')]  # torn last line: the trainer is writing


def compare_json(*args) -> dict:
    result = run_hrm("compare", *args, "--json", check=True)
    return json.loads(result.stdout)


def test_the_differing_keys_are_exactly_those_whose_values_differ(runs):
    summary = compare_json(*runs)
    # seed and arch.H_cycles differ in b; data_path and arch.damping in c. c, from an older hrm,
    # lacks ema and max_steps: it ran with their defaults (false, null), which a and b hold, so
    # they do not differ; a and b lack arch.damping, which c sets: theirs is the default 1.0.
    # lr, global_batch_size, arch.name/L_cycles/hidden_size are equal.
    assert summary["differing_keys"] == ["data_path", "seed", "arch.H_cycles", "arch.damping"]
    configs = [run["config"] for run in summary["runs"]]
    assert configs[0] == {"data_path": "data/s9", "seed": 0, "arch.H_cycles": 2, "arch.damping": 1.0}
    assert configs[1] == {"data_path": "data/s9", "seed": 1, "arch.H_cycles": 3, "arch.damping": 1.0}
    assert configs[2] == {"data_path": "data/s9b", "seed": 0, "arch.H_cycles": 2, "arch.damping": 0.9}
    assert [run["run"] for run in summary["runs"]] == [str(r) for r in runs]


def test_a_key_of_another_architecture_differs_and_a_newer_default_groups_seeds(tmp_path):
    """TRM's puzzle_emb_len has no HRM default: missing (shown "-") for the HRM run. Seeds of one
    setting, one run written before arch.mlp_t existed, group together under --mean-over."""
    trm = {**BASE, "arch": {**BASE["arch"], "name": "trm", "puzzle_emb_len": 16}}
    old = make_run(tmp_path / "hrm_s0", BASE, RECORDS_A)
    new = make_run(tmp_path / "hrm_s1", {**BASE, "seed": 1, "arch": {**BASE["arch"], "mlp_t": False}}, RECORDS_B)
    other = make_run(tmp_path / "trm_s0", trm, RECORDS_A)
    summary = compare_json(old, new, other, "--mean-over", "seed")
    assert summary["differing_keys"] == ["seed", "arch.name", "arch.puzzle_emb_len"]
    assert "arch.puzzle_emb_len" not in summary["runs"][0]["config"]
    assert [group["runs"] for group in summary["grouped"]["groups"]] == [[str(old), str(new)], [str(other)]]


def test_final_and_best_metrics_steps_time_and_throughput(runs):
    a, b, c = compare_json(*runs)["runs"]
    assert a["final"] == {"step": 30, "exact_accuracy": 0.6, "accuracy": 0.95, "q_halt_accuracy": 0.9, "steps": 3.5}
    assert a["best"] == {"metric": "exact_accuracy", "value": 0.75, "step": 20}
    assert (a["steps"], a["wall_time"], a["examples_per_s"]) == (30, 15.5, 200.0)  # (100 + 200 + 300) / 3
    assert a["peak_memory"] == 150 << 20 and b["peak_memory"] is None
    assert b["best"] == {"metric": "exact_accuracy", "value": 0.25, "step": 10}  # first time reached
    assert b["final"]["accuracy"] == 0.7 and b["wall_time"] == 10.0 + 12.0
    assert b["examples_per_s"] == 60.0
    # c has no test record yet, and its torn last line is skipped.
    assert c["final"] == {} and c["best"] == {"metric": "exact_accuracy", "value": None, "step": None}
    assert (c["steps"], c["wall_time"], c["examples_per_s"]) == (10, 3.0, 80.0)


def test_metric_chooses_best_and_a_loss_is_best_when_lowest(tmp_path):
    records = [eval_line(10, 1.0, 0.1, 0.5, lm_loss=0.9), eval_line(20, 2.0, 0.3, 0.7, lm_loss=0.4),
               eval_line(30, 3.0, 0.2, 0.6, lm_loss=0.6)]
    run = make_run(tmp_path / "r", BASE, records)
    (only,) = compare_json(run, "--metric", "accuracy")["runs"]
    assert only["best"] == {"metric": "accuracy", "value": 0.7, "step": 20}
    (only,) = compare_json(run, "--metric", "lm_loss")["runs"]
    assert only["best"] == {"metric": "lm_loss", "value": 0.4, "step": 20}
    result = run_hrm("compare", run, "--metric", "exactness")
    assert_one_line_error(result, "exactness", "exact_accuracy")
    assert result.returncode == 1


def test_a_single_run_differs_in_nothing(tmp_path):
    run = make_run(tmp_path / "r", BASE, RECORDS_A)
    summary = compare_json(run)
    assert summary["differing_keys"] == [] and summary["runs"][0]["config"] == {}
    assert set(summary) == {"differing_keys", "runs"}
    assert set(summary["runs"][0]) == {"run", "config", "final", "best", "steps", "wall_time", "examples_per_s",
                                       "peak_memory"}


def table_rows(text: str) -> list[dict[str, str]]:
    lines = text.splitlines()
    header = lines[0].split()
    rows = [line.split() for line in lines[1:]]
    assert all(len(row) == len(header) for row in rows), text  # aligned, one cell per column
    return [dict(zip(header, row)) for row in rows]


COLUMNS = ["run", "data_path", "seed", "arch.H_cycles", "arch.damping", "final.exact_accuracy",
           "final.accuracy", "final.q_halt_accuracy", "final.steps", "best.exact_accuracy", "best.step",
           "steps", "wall_time", "examples_per_s", "peak_memory"]


def test_the_table_shows_percentages_and_dashes(runs):
    result = run_hrm("compare", *runs, check=True)
    rows = table_rows(result.stdout)
    assert list(rows[0]) == COLUMNS
    a, b, c = rows
    assert (a["final.exact_accuracy"], a["final.accuracy"], a["best.exact_accuracy"], a["best.step"]) == \
        ("60.00%", "95.00%", "75.00%", "20")
    assert (a["arch.damping"], c["arch.damping"]) == ("1", "0.9")  # a's: the default, which it ran with
    assert (a["wall_time"], b["wall_time"], a["examples_per_s"]) == ("15.5s", "22.0s", "200.0")
    assert (a["peak_memory"], b["peak_memory"]) == ("150MiB", "-")
    assert b["final.q_halt_accuracy"] == "-"  # b's test records have no q_halt_accuracy
    assert all(c[k] == "-" for k in COLUMNS[5:11])  # no test record yet
    # numbers are right-aligned: the columns end at the same place on every line
    lines = result.stdout.splitlines()
    end = lines[0].index("best.exact_accuracy") + len("best.exact_accuracy")
    assert all(line[end - 1] != " " and line[end:end + 1] in (" ", "") for line in lines)


def test_out_writes_the_csv_and_the_png(runs, tmp_path):
    out = tmp_path / "cmp"
    result = run_hrm("compare", *runs, "--out", out, check=True)
    assert sorted(p.name for p in out.iterdir()) == ["compare.csv", "curves.png"]
    with open(out / "compare.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == COLUMNS
    assert rows[1] == [str(runs[0]), "data/s9", "0", "2", "1.0", "0.6", "0.95", "0.9", "3.5", "0.75", "20",
                       "30", "15.5", "200.0", str(150 << 20)]
    assert rows[3] == [str(runs[2]), "data/s9b", "0", "2", "0.9", "", "", "", "", "", "", "10", "3.0", "80.0", ""]
    assert len(rows) == 4 and result.stdout.splitlines()[0].split() == COLUMNS

    from hrm.show.charts import is_hrm_picture

    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and is_hrm_picture(out / "curves.png")
    # The chart itself: in each of its two charts, one curve per run that has points, through them.
    test_ax, loss_ax = comparison_figure([str(r) for r in runs], _records(runs), "exact_accuracy").axes
    assert _curves(test_ax) == {"a": [(10, 0.5), (20, 0.75), (30, 0.6)], "b": [(10, 0.25), (20, 0.25)]}
    assert _curves(loss_ax) == {"a": [(10, 2.0), (20, 1.5), (30, 1.0)], "b": [(10, 2.5), (20, 2.0)], "c": [(10, 2.2)]}


def _records(runs: list[Path]) -> list[list[dict]]:
    from hrm.analysis.compare import read_runs
    return read_runs([str(r) for r in runs])[1]


def _curves(ax) -> dict[str, list[tuple[float, float]]]:
    """{label: [(x, y), ...]} of the lines drawn on a matplotlib Axes."""
    return {line.get_label(): [tuple(map(float, xy)) for xy in line.get_xydata()] for line in ax.get_lines()}


def comparison_figure(*args):
    from hrm.analysis.compare import comparison_figure as figure_of
    return figure_of(*args)


def test_out_follows_the_output_rule(runs, tmp_path):
    out = tmp_path / "cmp"
    run_hrm("compare", *runs[:2], "--out", out, check=True)
    assert_one_line_error(run_hrm("compare", *runs, "--out", out), "--force")
    run_hrm("compare", *runs, "--out", out, "--force", check=True)  # ours: replaced
    assert len((out / "compare.csv").read_text().splitlines()) == 4
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    assert_one_line_error(run_hrm("compare", *runs, "--out", mine, "--force"), "refusing", "notes.txt")
    assert (mine / "notes.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c", "cmp", "mine"]  # no partial left


def test_many_runs_get_distinct_styles_and_one_legend_entry_each(tmp_path):
    runs = [make_run(tmp_path / f"grid_H{i}_L{i}_with_a_long_name", {**BASE, "seed": i},
                     [eval_line(10, 1.0, i / 10, 0.5), eval_line(20, 2.0, i / 10 + 0.05, 0.6)]) for i in range(8)]
    run_hrm("compare", *runs, "--out", tmp_path / "cmp", "--quiet", check=True)
    figure = comparison_figure([str(r) for r in runs], _records(runs), "exact_accuracy")
    lines = figure.axes[0].get_lines()
    assert len({(line.get_color(), line.get_linestyle(), line.get_marker()) for line in lines}) == 8
    assert [text.get_text() for text in figure.legends[0].get_texts()] == [r.name for r in runs]


def test_identical_runs_stay_distinguishable(tmp_path):
    """Defect: runs with the same curves were drawn one over the other in the same way, so only the
    last could be seen. Now each differs in colour, dashes and marker, and each later run is
    thinner and on top, so an earlier identical curve shows around it."""
    records = [train_line(10, 1.0, 2.0, 50.0), eval_line(10, 1.0, 0.5, 0.8), train_line(20, 2.0, 1.0, 50.0),
               eval_line(20, 2.0, 0.5, 0.9)]
    runs = [make_run(tmp_path / f"r{i}", {**BASE, "seed": i}, records) for i in range(3)]
    for ax in comparison_figure([str(r) for r in runs], _records(runs), "exact_accuracy").axes:
        lines = ax.get_lines()
        assert len(lines) == 3 and len({tuple(map(tuple, line.get_xydata())) for line in lines}) == 1
        assert len({line.get_color() for line in lines}) == 3
        assert len({line.get_linestyle() for line in lines}) == 3 and len({line.get_marker() for line in lines}) == 3
        drawn = sorted(lines, key=lambda line: line.get_zorder())  # in the order they are painted
        widths = [line.get_linewidth() for line in drawn]
        sizes = [line.get_markersize() for line in drawn]
        assert widths == sorted(widths, reverse=True) and len(set(widths)) == 3
        assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 3
        assert all(line.get_markerfacecolor() == "none" for line in lines)  # hollow: the smaller show inside


def test_all_zero_accuracies_keep_the_axis_at_zero_to_one(tmp_path):
    """Defect: all-zero accuracies drew an axis from -0.6 to 0.6 with a "-0" tick."""
    runs = [make_run(tmp_path / f"r{i}", {**BASE, "seed": i},
                     [eval_line(10, 1.0, 0.0, 0.0), eval_line(20, 2.0, 0.0, 0.0)]) for i in range(2)]
    figure = comparison_figure([str(r) for r in runs], _records(runs), "exact_accuracy")
    figure.canvas.draw()
    ax = figure.axes[0]
    low, high = ax.get_ylim()
    assert -0.05 <= low <= 0 and high >= 1
    shown = [tick for tick in ax.get_yticks() if low <= tick <= high]
    assert min(shown) == 0 and max(shown) == 1
    labels = [label.get_text() for label in ax.get_yticklabels()]
    assert labels and not any(text.startswith(("-", "\u2212")) for text in labels), labels
    # the curves lie on the floor, inside the axes, not on a hidden edge
    assert all(low < y < high for line in ax.get_lines() for _, y in line.get_xydata())


def test_loss_axis_is_logarithmic_only_where_the_values_span_decades(tmp_path):
    spanning = [train_line(10 * k, float(k), 2.0 / 10 ** (k / 2), 50.0) for k in range(1, 8)]  # 0.63 .. 0.0002
    narrow = [train_line(10 * k, float(k), 2.0 - k / 10, 50.0) for k in range(1, 8)]          # 1.9 .. 1.3
    for records, scale in ((spanning, "log"), (narrow, "linear")):
        run = make_run(tmp_path / scale, BASE, records + [eval_line(70, 8.0, 0.5, 0.5)])
        test_ax, loss_ax = comparison_figure([str(run)], _records([run]), "exact_accuracy").axes
        assert (loss_ax.get_yscale(), test_ax.get_yscale()) == (scale, "linear")


@pytest.mark.parametrize("case", ["missing", "a_file", "no_config", "no_metrics", "twice", "twice_spelled", "bad_line",
                                  "not_yaml"])
def test_bad_input_is_one_line(tmp_path, case):
    good = make_run(tmp_path / "good", BASE, RECORDS_A)
    other = tmp_path / "other"
    other.mkdir()
    if case == "missing":
        args, fragments = [good, tmp_path / "nope"], ["nope", "does not exist"]
    elif case == "a_file":
        (other / "notes.txt").write_text("x")
        args, fragments = [good, other / "notes.txt"], ["notes.txt", "not a training run"]
    elif case == "no_config":
        (other / "metrics.jsonl").write_text(json.dumps(RECORDS_A[0]) + "\n")
        args, fragments = [good, other], ["other", "config.yaml"]
    elif case == "no_metrics":
        (other / "config.yaml").write_text(yaml.safe_dump(BASE))
        args, fragments = [good, other], ["other", "metrics.jsonl"]
    elif case == "twice":
        args, fragments = [good, other, good], ["good", "twice"]
    elif case == "twice_spelled":  # relative and absolute (run in tmp_path)
        args, fragments = ["good", good], ["good", "twice", f"as good and {good}"]
    elif case == "bad_line":
        make_run(other / "run", BASE, RECORDS_A[:1], tail="{not json\n" + json.dumps(RECORDS_A[1]) + "\n")
        args, fragments = [good, other / "run"], ["line 2", "not JSON"]
    else:
        (other / "config.yaml").write_text("arch: [unclosed\n")
        (other / "metrics.jsonl").write_text("")
        args, fragments = [good, other], ["config.yaml", "YAML"]
    result = run_hrm("compare", *args, cwd=tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    assert_one_line_error(result, *fragments)


def test_a_run_that_has_logged_nothing_yet_is_compared(tmp_path):
    good = make_run(tmp_path / "good", BASE, RECORDS_A)
    fresh = make_run(tmp_path / "fresh", {**BASE, "lr": 3e-4}, [])
    a, b = compare_json(good, fresh)["runs"]
    assert b == {"run": str(fresh), "config": {"lr": 3e-4}, "final": {}, "steps": None, "wall_time": None,
                 "examples_per_s": None, "peak_memory": None,
                 "best": {"metric": "exact_accuracy", "value": None, "step": None}}


def test_usage_without_runs_exits_2():
    result = run_hrm("compare")
    assert result.returncode == 2
    assert_one_line_error(result, "RUN")


def test_help_has_an_example():
    text = run_hrm("compare", "--help", check=True).stdout
    assert "Example" in text and "hrm compare runs/" in text and "--metric" in text and "<bool>" not in text


def test_two_real_tiny_runs(tmp_path, single_thread):
    """Two 12-step runs of the trainer that differ in seed and L_cycles; the first stops at step 6
    and is resumed, so its wall time spans both processes."""
    from hrm.train.config import resume_config
    from hrm.train.loop import train as train_run
    from sudoku4_data import write_sudoku4
    from tests.train_helpers import tiny

    data = write_sudoku4(tmp_path / "s4", train_size=64, test_size=16, blanks=6)
    first, second = tmp_path / "r1", tmp_path / "r2"
    train_run(tiny(data, "max_steps=6"), first)
    train_run(resume_config(first, ["max_steps=12"]), first, resume=True)
    train_run(tiny(data, "max_steps=12", "seed=1", "arch.L_cycles=1"), second)
    summary = compare_json(first, second)
    assert summary["differing_keys"] == ["seed", "arch.L_cycles"]  # max_steps ends at 12 in both
    for run, entry in zip((first, second), summary["runs"]):
        lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        times = [r["time"] for r in lines]
        assert times == sorted(times)  # the trainer carries its clock across the resume
        tests = [r for r in lines if r["split"] == "test"]
        assert tests[-1]["step"] == 12  # (the first also evaluated where it stopped, at 6)
        assert entry["steps"] == 12 and entry["wall_time"] == times[-1]
        assert entry["final"]["exact_accuracy"] == tests[-1]["exact_accuracy"]
        assert entry["best"]["value"] == max(r["exact_accuracy"] for r in tests)


def test_config_values_compare_as_yaml_values():
    from hrm.analysis.compare import differing_keys, flatten_config

    flat = [flatten_config({"a": 2, "b": True, "c": {"d": {"e": 1}}, "f": [1, 2]}),
            flatten_config({"a": 2.0, "b": 1, "c": {"d": {"e": 1}}, "f": [1, 2]})]
    assert flat[0] == {"a": 2, "b": True, "c.d.e": 1, "f": [1, 2]}
    assert differing_keys(flat) == ["b"]  # 2 == 2.0, but true is not 1


def test_mean_over_seed_groups_the_runs_and_gives_mean_and_sample_std(tmp_path):
    # Two architectures x three seeds with final exact accuracies written here: hrm 0.2, 0.4, 0.9
    # (mean 0.5, sample std sqrt(((0.3)^2 + (0.1)^2 + (0.4)^2) / 2) = sqrt(0.13)), trm 0.6 x 3.
    finals = {"hrm": [0.2, 0.4, 0.9], "trm": [0.6, 0.6, 0.6]}
    folders = []
    for name, values in finals.items():
        for seed, exact in enumerate(values):
            config = {**BASE, "seed": seed, "arch": {**BASE["arch"], "name": name}}
            records = [train_line(10, 2.0 + seed, 1.0, 100.0 * (seed + 1)),
                       eval_line(10, 3.0 + seed, exact / 2, 0.5), eval_line(20, 5.0 + seed, exact, 0.7)]
            folders.append(make_run(tmp_path / f"{name}_s{seed}", config, records))
    summary = compare_json(*folders, "--mean-over", "seed", "--out", tmp_path / "cmp")
    grouped = summary["grouped"]
    assert grouped["mean_over"] == "seed" and grouped["keys"] == ["arch.name"]
    assert [g["config"] for g in grouped["groups"]] == [{"arch.name": "hrm"}, {"arch.name": "trm"}]
    hrm, trm = grouped["groups"]
    assert hrm["runs"] == [str(f) for f in folders[:3]]
    exact = hrm["final"]["exact_accuracy"]
    assert exact["n"] == 3 and exact["mean"] == pytest.approx(0.5) and exact["std"] == pytest.approx(0.13 ** 0.5)
    assert (exact["min"], exact["max"]) == (0.2, 0.9)
    assert trm["final"]["exact_accuracy"]["std"] == pytest.approx(0.0)  # three equal values: zero spread
    assert hrm["examples_per_s"]["mean"] == pytest.approx(200.0) and hrm["wall_time"]["mean"] == pytest.approx(6.0)
    assert hrm["best"]["value"]["mean"] == pytest.approx(0.5)  # the best is the last evaluation here
    # The CSV: one row per group with mean/std/min/max of each figure; the PNG: one mean curve per group.
    rows = list(csv.DictReader(open(tmp_path / "cmp" / "compare.csv", newline="")))
    assert [r["arch.name"] for r in rows] == ["hrm", "trm"] and rows[0]["n"] == "3"
    assert float(rows[0]["final.exact_accuracy_std"]) == pytest.approx(0.13 ** 0.5)
    assert (tmp_path / "cmp" / "curves.png").read_bytes().startswith(b"\x89PNG")
    table = run_hrm("compare", *folders, "--mean-over", "seed", check=True).stdout
    assert "50.0% ± 36.1%" in table and "60.0% ± 0.0%" in table
    # --force replaces a grouped comparison folder (it is recognised as ours).
    run_hrm("compare", *folders, "--out", tmp_path / "cmp", "--force", check=True)
    assert_one_line_error(run_hrm("compare", *folders, "--mean-over", "sed"), "--mean-over sed")


def _seed_runs(tmp_path: Path, curves: dict[str, list[list[float]]]) -> list[Path]:
    """Runs of each architecture in `curves`, one per seed: test exact accuracy at steps 10, 20, 30
    from the given lists, and a train lm_loss of twice that plus one."""
    folders = []
    for name, per_seed in curves.items():
        for seed, values in enumerate(per_seed):
            config = {**BASE, "seed": seed, "arch": {**BASE["arch"], "name": name}}
            records = []
            for step, value in zip((10, 20, 30), values):
                records += [train_line(step, step / 10, 1.0 + 2 * value, 100.0), eval_line(step, step / 10, value, 0.5)]
            folders.append(make_run(tmp_path / f"{name}_s{seed}", config, records))
    return folders


def test_a_group_of_one_run_has_no_spread(tmp_path):
    """Defect: --mean-over with one run per group printed "± 0.0"; one run's spread is undefined."""
    folders = _seed_runs(tmp_path, {"hrm": [[0.1, 0.2, 0.4], [0.1, 0.3, 0.6]], "trm": [[0.2, 0.5, 0.7]]})
    summary = compare_json(*folders, "--mean-over", "seed", "--out", tmp_path / "cmp")
    hrm, trm = summary["grouped"]["groups"]
    assert trm["final"]["exact_accuracy"] == {"mean": 0.7, "std": None, "min": 0.7, "max": 0.7, "n": 1}
    assert trm["wall_time"]["std"] is None and hrm["final"]["exact_accuracy"]["std"] == pytest.approx(2 ** 0.5 / 10)
    rows = list(csv.DictReader(open(tmp_path / "cmp" / "compare.csv", newline="")))
    assert rows[1]["final.exact_accuracy_std"] == "null" and rows[1]["final.exact_accuracy_mean"] == "0.7"
    assert float(rows[0]["final.exact_accuracy_std"]) == pytest.approx(2 ** 0.5 / 10)
    table = run_hrm("compare", *folders, "--mean-over", "seed", check=True).stdout.splitlines()
    trm_row = next(line for line in table if line.startswith("trm"))
    assert "70.0% ± n/a" in trm_row and "± 0.0" not in trm_row and "3.0s ± n/a" in trm_row
    assert "50.0% ± 14.1%" in next(line for line in table if line.startswith("hrm"))


def test_the_mean_curve_has_a_band_of_one_sample_std(tmp_path):
    import statistics

    from hrm.analysis.compare import compare_runs, group_comparison_figure, group_runs, read_runs

    curves = {"hrm": [[0.1, 0.2, 0.4], [0.1, 0.3, 0.6], [0.4, 0.4, 0.5]], "trm": [[0.2, 0.5, 0.7]]}
    folders = [str(f) for f in _seed_runs(tmp_path, curves)]
    configs, records = read_runs(folders)
    summary = compare_runs(folders, configs, records)
    grouped = group_runs(summary, "seed")
    figure = group_comparison_figure(grouped, dict(zip(folders, records)), "exact_accuracy")
    test_ax, loss_ax = figure.axes
    for ax, as_plotted in ((test_ax, lambda v: v), (loss_ax, lambda v: 1.0 + 2 * v)):
        # the trm group (one run): its curve, no band; the hrm group: the mean curve and one band
        assert len(ax.collections) == 1
        band = {tuple(map(float, xy)) for xy in ax.collections[0].get_paths()[0].vertices}
        mean_line = next(line for line in ax.get_lines() if line.get_label() == "name=hrm")
        for i, step in enumerate((10, 20, 30)):
            values = [as_plotted(seed[i]) for seed in curves["hrm"]]
            mean, std = statistics.fmean(values), statistics.stdev(values)
            assert any(x == step and y == pytest.approx(mean + std) for x, y in band), (step, band)
            assert any(x == step and y == pytest.approx(mean - std) for x, y in band), (step, band)
            assert tuple(mean_line.get_xydata()[i]) == pytest.approx((step, mean))
        trm_line = next(line for line in ax.get_lines() if line.get_label() == "name=trm")
        assert trm_line.get_xydata().ravel().tolist() == pytest.approx(
            [10, as_plotted(0.2), 20, as_plotted(0.5), 30, as_plotted(0.7)])


def test_gradient_depths_and_schedules_line_up_with_their_peak_memory(tmp_path):
    """arch.bptt, plain or a schedule, is a config column of one cell; the peak memory follows."""
    depths = {"one_step": 1, "all": "all", "growing": [[0, 1], [0.5, "all"]]}
    folders = [make_run(tmp_path / name, {**BASE, "arch": {**BASE["arch"], "bptt": bptt}},
                        [train_line(10, 2.0, 1.0, 100.0, 100 + 50 * i)])
               for i, (name, bptt) in enumerate(depths.items())]
    rows = table_rows(run_hrm("compare", *folders, check=True).stdout)
    assert [(r["arch.bptt"], r["peak_memory"]) for r in rows] == [("1", "100MiB"), ("all", "150MiB"),
                                                                  ('[[0,1],[0.5,"all"]]', "200MiB")]
