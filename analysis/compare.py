"""`hrm compare RUN...`: one table of several training runs (an ablation, a grid, seeds).

    runs = ["runs/hrm", "runs/trm"]
    configs, records = read_runs(runs)
    summary = compare_runs(runs, configs, records)     # {"differing_keys": [...], "runs": [...]}
    print(format_table(summary))
    write_comparison(summary, records, "runs/compare")  # compare.csv + curves.png

It reads run folders only (RUN/config.yaml and RUN/metrics.jsonl, as `hrm train --out` writes
them) and never the checkpoints, so it works on live runs and on runs whose data is gone.

What each figure is:
- the config keys shown are those whose values differ between the runs, flattened (`arch.H_cycles`).
  A key absent from one run's config counts as the value hrm reads for it, its default (a run of
  an older hrm, from before the key existed, ran with it); a key of another architecture, which
  it has no default for, differs.
- `final`: the metrics of the last test record (the evaluation with the largest step).
- `best`: the best value of `metric` over the test records and the step of its first occurrence;
  best is the largest value, except for a loss (a name containing "loss"), where it is the smallest.
- `steps`: the last step logged; `wall_time`: the run's `time` (seconds spent in the training
  loop, evaluations included, not the start-up before the first step). `hrm train --resume`
  carries `time` on from its checkpoint and drops the log lines after it, so the last record's
  time is the total; a log whose time restarts (lines appended by another writer) is summed
  segment by segment.
- `examples_per_s`: the mean of the train records' `examples_per_s` (training throughput over
  the log windows; evaluations are not counted).
- `peak_memory`: the largest `peak_memory` of the train records, in bytes (CUDA: the allocator's
  peak; CPU: the training process's peak resident set); "-" for runs of an hrm that did not log it.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import yaml

from hrm.common import HrmError, format_bytes
from hrm.common.outputs import OutputKind, atomic_directory
from hrm.analysis.curves import METRICS, _series, is_number, last_values, read_metrics
from hrm.show.charts import (fraction_axis, legend_below, mean_band, new_figure, plot_line, run_styles, save_figure,
                             set_scale)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CSV_NAME, PNG_NAME = "compare.csv", "curves.png"
NOT_METRICS = ("step", "split", "time", "count")  # record fields that are not a test metric
FIRST_METRICS = ("exact_accuracy", "accuracy")
MISSING = object()  # a config key the run's config does not have (shown "-"), unlike a null value
RUN_FIGURES = ("steps", "wall_time", "examples_per_s", "peak_memory")  # one number per run, after the metrics


def is_compare_folder(path: Path) -> bool:
    """Whether `path` was written by `hrm compare --out`: it holds our compare.csv (first column
    `run`, or `group` with --mean-over) and nothing but the files we write."""
    path = Path(path)
    try:
        entries = {entry.name for entry in path.iterdir()}
        with open(path / CSV_NAME, newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    return bool(header) and header[0] in ("run", "group") and entries <= {CSV_NAME, PNG_NAME}


COMPARE_OUTPUT = OutputKind("a comparison folder", directory=True, written_by_hrm=is_compare_folder)


def flatten_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"lr": 1e-4, "arch": {"H_cycles": 2}} -> {"lr": 1e-4, "arch.H_cycles": 2} (any depth)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_config(value, name + "."))
        else:
            flat[name] = value
    return flat


def _same(a: Any, b: Any) -> bool:
    """Equal config values; true and 1 are not the same value (YAML tells them apart), 2 and 2.0 are."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def differing_keys(configs: list[dict[str, Any]]) -> list[str]:
    """The flattened keys whose value is not the same in every config, in the order they first
    appear; a key that some config lacks differs."""
    keys = list(dict.fromkeys(key for config in configs for key in config))
    first = configs[0]
    return [key for key in keys
            if key not in first or any(key not in config or not _same(config[key], first[key]) for config in configs)]


def read_run_config(run: str | os.PathLike) -> dict[str, Any]:
    """RUN/config.yaml, flattened; a one-line HrmError when RUN is not a training run."""
    path = Path(run)
    if not path.exists():
        raise HrmError(f"run directory {run} does not exist")
    if not path.is_dir():
        raise HrmError(f"{run} is not a training run (a file, not a run folder)")
    config_file = path / "config.yaml"
    if not config_file.is_file():
        raise HrmError(f"{run} is not a training run (no config.yaml)")
    try:
        saved = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise HrmError(f"{config_file}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("arch"), dict):
        raise HrmError(f"{config_file} is not the config of an hrm training run (no arch mapping)")
    return flatten_config(saved)


def wall_time(records: Iterable[dict[str, Any]]) -> float | None:
    """Seconds of the run: the last record's `time`, plus the end of each earlier segment where
    the time restarts (goes down) in file order."""
    total, last = 0.0, None
    for record in records:
        time = record.get("time")
        if not is_number(time):
            continue
        if last is not None and time < last:
            total += last  # the log restarts its clock here: the segment before ended at `last`
        last = float(time)
    return None if last is None else total + last


def lower_is_better(metric: str) -> bool:
    return "loss" in metric


def best_value(records: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    """{"metric", "value", "step"}: the best test value of `metric` and the first step it was reached
    (value and step None when no test record has it)."""
    points = _series(records, "test", metric)  # sorted by step
    if not points:
        return {"metric": metric, "value": None, "step": None}
    pick = min if lower_is_better(metric) else max
    value = pick(value for _, value in points)
    step = next(step for step, v in points if v == value)
    return {"metric": metric, "value": value, "step": int(step)}


def summarise_run(records: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    """One run's figures from its metrics records (see the module doc): final, best, steps,
    wall_time, examples_per_s, peak_memory."""
    last_test = last_values(records).get("test")
    final: dict[str, Any] = {}
    if last_test is not None:
        final["step"] = last_test["step"]
        metrics = {k: v for k, v in last_test.items() if k not in NOT_METRICS and is_number(v)}
        rank = {name: i for i, name in enumerate(FIRST_METRICS)}  # exact_accuracy, accuracy, then the log's order
        final.update(sorted(metrics.items(), key=lambda item: rank.get(item[0], len(rank))))
    throughputs = [float(r["examples_per_s"]) for r in records
                   if r["split"] == "train" and is_number(r.get("examples_per_s"))]
    peaks = [int(r["peak_memory"]) for r in records if r["split"] == "train" and is_number(r.get("peak_memory"))]
    return {"final": final, "best": best_value(records, metric),
            "steps": max((r["step"] for r in records), default=None),
            "wall_time": wall_time(records),
            "examples_per_s": sum(throughputs) / len(throughputs) if throughputs else None,
            "peak_memory": max(peaks, default=None)}


def _read_records(run: str) -> list[dict[str, Any]]:
    """The metrics of a run; a run that has started but logged nothing yet has none."""
    path = Path(run) / "metrics.jsonl"
    if not path.is_file():
        raise HrmError(f"{run} is not a training run (no metrics.jsonl)")
    return read_metrics(run, allow_empty=True)


def read_runs(runs: list[str]) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """(flattened configs, metrics records) of the runs; one-line errors for a folder that is not
    a run and for a run given twice (under any spelling of its path)."""
    if not runs:
        raise HrmError("give at least one run folder to compare")
    seen: dict[Path, str] = {}
    for run in runs:
        resolved = Path(run).resolve()
        if resolved in seen:
            also = f" (as {seen[resolved]} and {run})" if seen[resolved] != run else ""
            raise HrmError(f"run {seen[resolved]} is given twice{also}")
        seen[resolved] = run
    return fill_defaults([read_run_config(run) for run in runs]), [_read_records(run) for run in runs]


def _default_of(key: str, config: dict[str, Any]) -> Any:
    """What hrm reads for `key` when `config` (flattened) lacks it: the architecture's default for an
    arch key (that architecture's; MISSING for a key it does not have), the trainer's for another."""
    from dataclasses import MISSING as NO_DEFAULT, fields

    from hrm.train.config import TrainConfig, arch_defaults  # torch, only when a key is missing

    if key.startswith("arch."):
        try:
            return arch_defaults(str(config.get("arch.name", "hrm"))).get(key[len("arch."):], MISSING)
        except HrmError:  # an architecture this hrm does not know
            return MISSING
    for field in fields(TrainConfig):
        if field.name == key:
            if field.default is not NO_DEFAULT:
                return field.default
            return field.default_factory() if field.default_factory is not NO_DEFAULT else MISSING
    return MISSING


def fill_defaults(configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The configs with each key that another run's config has and this one lacks set to the value
    hrm reads for it: a run written before the key existed ran with its default (a resume would
    read the same), so it is not a difference. A key of another architecture stays missing."""
    keys = list(dict.fromkeys(key for config in configs for key in config))
    if all(key in config for config in configs for key in keys):
        return configs
    filled = []
    for config in configs:
        missing = {key: _default_of(key, config) for key in keys if key not in config}
        filled.append({**config, **{key: value for key, value in missing.items() if value is not MISSING}})
    return filled


def compare_runs(runs: list[str], configs: list[dict[str, Any]], records: list[list[dict[str, Any]]],
                 metric: str = "exact_accuracy") -> dict[str, Any]:
    """{"differing_keys": [...], "runs": [{"run", "config", "final", "best", "steps", "wall_time",
    "examples_per_s", "peak_memory"}, ...]}: one entry per run, in the order given (`read_runs` reads the
    configs and records). A run's `config` holds the differing keys its config.yaml has (a key
    it lacks is left out)."""
    tested = [r for rs in records for r in rs if r["split"] == "test"]
    if tested and not any(is_number(r.get(metric)) for r in tested):
        known = sorted({k for r in tested for k, v in r.items() if k not in NOT_METRICS and is_number(v)})
        raise HrmError(f"no test record of these runs has the metric {metric!r} (they have: {', '.join(known)})")
    keys = differing_keys(configs)
    entries = [{"run": run, "config": {k: config[k] for k in keys if k in config}, **summarise_run(rs, metric)}
               for run, config, rs in zip(runs, configs, records)]
    return {"differing_keys": keys, "runs": entries}


def metric_order(present: Iterable[str]) -> list[str]:
    """Metric names in table order: exact_accuracy and accuracy first, then the trainer's order,
    then any others alphabetically."""
    present = list(dict.fromkeys(present))
    order = [*FIRST_METRICS, *(m for m in METRICS if m not in FIRST_METRICS)]
    return [m for m in order if m in present] + sorted(m for m in present if m not in order)


def final_metrics(summary: dict[str, Any]) -> list[str]:
    """The final metrics of any run, in table order."""
    return metric_order(k for run in summary["runs"] for k in run["final"] if k != "step")


def _metric_name(summary: dict[str, Any]) -> str:
    return summary["runs"][0]["best"]["metric"]


def columns(summary: dict[str, Any]) -> list[str]:
    """The columns of the table and of compare.csv."""
    metric = _metric_name(summary)
    return ["run", *summary["differing_keys"], *(f"final.{m}" for m in final_metrics(summary)),
            f"best.{metric}", "best.step", *RUN_FIGURES]


def raw_rows(summary: dict[str, Any]) -> list[list[Any]]:
    """One list of raw values per run, in `columns` order; MISSING where a run has no such value."""
    rows = []
    for run in summary["runs"]:
        row = [run["run"], *(run["config"].get(k, MISSING) for k in summary["differing_keys"])]
        row += [run["final"].get(m, MISSING) for m in final_metrics(summary)]
        best = run["best"]
        row += [MISSING if best["value"] is None else best["value"], MISSING if best["step"] is None else best["step"]]
        row += [MISSING if run[k] is None else run[k] for k in RUN_FIGURES]
        rows.append(row)
    return rows


def _config_text(value: Any) -> str:
    """A config value as a user types it in an override (YAML scalars)."""
    if value is MISSING:
        return "-"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))  # one word: a depth schedule [[0,1],[0.5,"all"]]
    return str(value)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _value_text(column: str, value: Any) -> str:
    if value is MISSING:
        return "-"
    if column in ("best.step", "steps"):
        return str(value)
    if column == "wall_time":
        return _duration(value)
    if column == "examples_per_s":
        return f"{value:.1f}"
    if column == "peak_memory":
        return format_bytes(value).replace(" ", "")  # one word per cell, like the wall time's 4m05s
    if "accuracy" in column:
        return f"{value:.2%}"
    return f"{value:.4g}"


def format_table(summary: dict[str, Any]) -> str:
    """The comparison as an aligned text table: accuracies in percent, wall time as 1h02m / 4m05s."""
    header = columns(summary)
    n_config = 1 + len(summary["differing_keys"])
    rows = [header]
    for raw in raw_rows(summary):
        rows.append([raw[0], *(_config_text(v) for v in raw[1:n_config]),
                     *(_value_text(c, v) for c, v in zip(header[n_config:], raw[n_config:]))])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    # Text columns (run, config) left-aligned, numbers right-aligned so that digits line up.
    lines = ["  ".join(cell.ljust(w) if i < n_config else cell.rjust(w) for i, (cell, w) in
                       enumerate(zip(row, widths))).rstrip() for row in rows]
    return "\n".join(lines)


def _csv_cell(value: Any) -> Any:
    if value is MISSING:
        return ""
    if value is None or isinstance(value, (bool, list, dict)):
        return _config_text(value)
    return value


def write_csv(summary: dict[str, Any], path: str | os.PathLike) -> None:
    """The table's rows and columns with raw numbers (fractions, seconds); empty where the table has "-"."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns(summary))
        for raw in raw_rows(summary):
            writer.writerow([_csv_cell(v) for v in raw])


def curve_labels(runs: list[str]) -> list[str]:
    """Legend labels: each run's folder name, or the path as given where two names clash."""
    names = [Path(run).name or run for run in runs]
    return [name if names.count(name) == 1 else run for name, run in zip(names, runs)]


def _two_charts(header: str, test_title: str, loss_title: str) -> tuple["Figure", list]:
    """The figure of a comparison: the test metric (left) and the train lm_loss (right) against the
    step, one legend below both."""
    figure, axes = new_figure(1, 2, title=header)
    for ax, title in zip(axes, (test_title, loss_title)):
        ax.set_title(title, loc="left", fontsize="medium")
        ax.set_xlabel("step")
    return figure, axes


def _finish_two_charts(figure: "Figure", axes: list, metric: str, test_values: list[float],
                       loss_values: list[float]) -> None:
    """Axes ranges from what was drawn, and one legend for both charts (a run's style is the same
    in each) below them, in as many columns as fit."""
    test_ax, loss_ax = axes
    if "accuracy" in metric:
        fraction_axis(test_ax)
    else:
        set_scale(test_ax, test_values)
    set_scale(loss_ax, loss_values)
    handles, labels = test_ax.get_legend_handles_labels()
    more = [(h, l) for h, l in zip(*loss_ax.get_legend_handles_labels()) if l not in labels]
    legend_below(figure, handles + [h for h, _ in more], labels + [l for _, l in more])


def comparison_figure(runs: list[str], records: list[list[dict[str, Any]]], metric: str) -> "Figure":
    """Two charts side by side: the test `metric` of every run against the step, and the train
    lm_loss; each run in its own style (hrm.show.charts.run_styles), the same in both charts."""
    labels = curve_labels(runs)
    figure, axes = _two_charts(f"{len(runs)} run(s): test {metric} and train lm_loss", f"test {metric}",
                               "train lm_loss")
    test_values, loss_values = [], []
    for i, (label, rs, style) in enumerate(zip(labels, records, run_styles(len(runs)))):
        tests, losses = _series(rs, "test", metric), _series(rs, "train", "lm_loss")
        plot_line(axes[0], tests, label=label, run=i, **style)
        plot_line(axes[1], losses, label=label, run=i, **style)
        test_values += [y for _, y in tests]
        loss_values += [y for _, y in losses]
    _finish_two_charts(figure, axes, metric, test_values, loss_values)
    return figure


def plot_comparison(runs: list[str], records: list[list[dict[str, Any]]], metric: str,
                    out: str | os.PathLike, *, force: bool = False) -> Path:
    return save_figure(comparison_figure(runs, records, metric), out, force=force)


def write_comparison(summary: dict[str, Any], records: list[list[dict[str, Any]]], out: str | os.PathLike,
                     *, force: bool = False) -> Path:
    """OUT/compare.csv and OUT/curves.png, as one folder written atomically (hrm.common.outputs)."""
    runs = [run["run"] for run in summary["runs"]]
    with atomic_directory(out, COMPARE_OUTPUT, force=force) as tmp:
        tmp.mkdir()
        write_csv(summary, tmp / CSV_NAME)
        plot_comparison(runs, records, _metric_name(summary), tmp / PNG_NAME)
    return Path(out)


# --- Means over seeds (`--mean-over seed`) --------------------------------------------------------


def _stats(values: list[float]) -> dict[str, Any] | None:
    """{"mean", "std" (sample std; None for one value, whose spread is undefined), "min", "max",
    "n"} of the finite values."""
    values = [float(v) for v in values if is_number(v)]
    if not values:
        return None
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else None
    return {"mean": mean, "std": std, "min": min(values), "max": max(values), "n": len(values)}


def check_group_key(configs: list[dict[str, Any]], key: str) -> None:
    """A one-line error when no run's config has `key` (a typo in --mean-over)."""
    if not any(key in config for config in configs):
        raise HrmError(f"--mean-over {key}: no run's config has that key (e.g. seed, arch.H_cycles)")


def group_runs(summary: dict[str, Any], key: str) -> dict[str, Any]:
    """The runs grouped by every differing key but `key` (e.g. "seed"), with each figure as
    {"mean", "std", "min", "max", "n"} over the group's runs: {"mean_over", "keys", "groups": [
    {"config", "runs", "final": {metric: stats}, "best": {"metric", "value": stats, "step": stats},
    "steps", "wall_time", "examples_per_s", "peak_memory"}]} in the order each group first appears."""
    keys = [k for k in summary["differing_keys"] if k != key]
    groups: dict[str, dict[str, Any]] = {}
    for run in summary["runs"]:
        config = {k: run["config"][k] for k in keys if k in run["config"]}  # a key the runs lack: left out
        groups.setdefault(json.dumps(config, sort_keys=True, default=str), {"config": config, "members": []})["members"].append(run)
    metric = _metric_name(summary)
    out = []
    for group in groups.values():
        members = group["members"]
        names = list(dict.fromkeys(m for run in members for m in run["final"] if m != "step"))
        out.append({"config": group["config"], "runs": [run["run"] for run in members],
                    "final": {m: _stats([run["final"].get(m) for run in members]) for m in names},
                    "best": {"metric": metric, "value": _stats([run["best"]["value"] for run in members]),
                             "step": _stats([run["best"]["step"] for run in members])},
                    **{k: _stats([run[k] for run in members]) for k in RUN_FIGURES}})
    return {"mean_over": key, "keys": keys, "groups": out}


def _spread_text(column: str, stats: dict[str, Any] | None) -> str:
    if stats is None:
        return "-"

    def text(value: float) -> str:
        return f"{value:.1%}" if "accuracy" in column else _value_text(column, value)

    # A group of one run has no spread: "n/a", where "± 0.0" would claim a perfectly stable result.
    return f"{text(stats['mean'])} ± {'n/a' if stats['std'] is None else text(stats['std'])}"


def group_columns(grouped: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(config keys, figure columns) of the grouped table."""
    finals = metric_order(m for g in grouped["groups"] for m in g["final"])
    metric = grouped["groups"][0]["best"]["metric"] if grouped["groups"] else "exact_accuracy"
    return grouped["keys"], [*(f"final.{m}" for m in finals), f"best.{metric}", "wall_time", "examples_per_s",
                             "peak_memory"]


def _group_figure(group: dict[str, Any], column: str) -> dict[str, Any] | None:
    if column.startswith("final."):
        return group["final"].get(column[len("final."):])
    if column.startswith("best."):
        return group["best"]["value"]
    return group[column]


def format_group_table(grouped: dict[str, Any]) -> str:
    """One row per group: its config, n runs, each figure as mean ± std over the runs."""
    keys, figures = group_columns(grouped)
    header = [*keys, "n", *(f"{c} (mean ± std)" if c.startswith(("final.", "best.")) else c for c in figures)]
    rows = [header]
    for group in grouped["groups"]:
        rows.append([*(_config_text(group["config"].get(k, MISSING)) for k in keys), str(len(group["runs"])),
                     *(_spread_text(c, _group_figure(group, c)) for c in figures)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i < len(keys) else cell.rjust(w) for i, (cell, w) in
                       enumerate(zip(row, widths))).rstrip() for row in rows]
    return f"mean over {grouped['mean_over']} (sample std)\n" + "\n".join(lines)


def write_group_csv(grouped: dict[str, Any], path: str | os.PathLike) -> None:
    """The grouped table with raw numbers: per figure, its _mean, _std, _min and _max."""
    keys, figures = group_columns(grouped)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["group", *keys, "n", "runs",
                         *(f"{c}_{s}" for c in figures for s in ("mean", "std", "min", "max"))])
        for i, group in enumerate(grouped["groups"]):
            row: list[Any] = [i, *(_csv_cell(group["config"].get(k, MISSING)) for k in keys), len(group["runs"]),
                              " ".join(group["runs"])]
            for column in figures:
                stats = _group_figure(group, column)
                # "null" where a group of one run has no std; empty where the figure is missing
                row += ["" if stats is None else "null" if stats[s] is None else stats[s]
                        for s in ("mean", "std", "min", "max")]
            writer.writerow(row)


def group_label(grouped: dict[str, Any], group: dict[str, Any]) -> str:
    text = " ".join(f"{k.split('.')[-1]}={_config_text(group['config'][k])}" for k in grouped["keys"]
                    if k in group["config"])
    return text or "all runs"


def group_comparison_figure(grouped: dict[str, Any], records_of: dict[str, list[dict[str, Any]]],
                            metric: str) -> "Figure":
    """As comparison_figure, one curve per group: the mean over its runs at the steps all of them
    logged, in a band of ± the sample std (hrm.show.charts.mean_band; none for a group of one)."""
    labels = [group_label(grouped, g) for g in grouped["groups"]]
    sizes = sorted({len(g["runs"]) for g in grouped["groups"]})
    header = (f"{len(labels)} group(s), mean ± std over {grouped['mean_over']} "
              f"({'/'.join(map(str, sizes))} runs each): test {metric} and train lm_loss")
    figure, axes = _two_charts(header, f"test {metric} (mean ± std)", "train lm_loss (mean ± std)")
    test_values, loss_values = [], []
    for i, (label, group, style) in enumerate(zip(labels, grouped["groups"], run_styles(len(labels)))):
        members = [records_of[run] for run in group["runs"]]
        tests = mean_band(axes[0], [_series(rs, "test", metric) for rs in members], label=label, run=i, **style)
        losses = mean_band(axes[1], [_series(rs, "train", "lm_loss") for rs in members], label=label, run=i, **style)
        test_values += [mean for _, mean, _ in tests]
        loss_values += [mean for _, mean, _ in losses]
    _finish_two_charts(figure, axes, metric, test_values, loss_values)
    return figure


def plot_group_comparison(grouped: dict[str, Any], records_of: dict[str, list[dict[str, Any]]], metric: str,
                          out: str | os.PathLike, *, force: bool = False) -> Path:
    return save_figure(group_comparison_figure(grouped, records_of, metric), out, force=force)


def write_group_comparison(grouped: dict[str, Any], summary: dict[str, Any], records: list[list[dict[str, Any]]],
                           out: str | os.PathLike, *, force: bool = False) -> Path:
    """OUT/compare.csv (the grouped table) and OUT/curves.png (one mean curve per group)."""
    records_of = {run["run"]: rs for run, rs in zip(summary["runs"], records)}
    with atomic_directory(out, COMPARE_OUTPUT, force=force) as tmp:
        tmp.mkdir()
        write_group_csv(grouped, tmp / CSV_NAME)
        plot_group_comparison(grouped, records_of, _metric_name(summary), tmp / PNG_NAME)
    return Path(out)
