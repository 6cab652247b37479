"""`hrm compare TRACE...`: several `hrm trace` folders side by side (architectures, seeds).

    summaries, configs = read_traces(["runs/hrm_s0/trace", "runs/trm_s0/trace"])
    result = compare_traces(folders, summaries, configs, mean_over="seed")
    print(format_trace_table(result))
    write_trace_comparison(result, summaries, "runs/inside")   # compare.csv + curves.png

It reads the traces' summary.json files only. The config of a trace is the one of the run it
traced, recorded in its protocol (`run_config`); the columns are the keys that differ between
traces (as `hrm compare` does for runs), and `--mean-over KEY` groups the traces by every other
differing key, each figure as mean ± sample std over a group.

The figures, per trace:
- `exact`, `token_accuracy`: of the decoded answer after the last update (the last segment's
  output, what `hrm eval --steps M` scores);
- `pr_high`, `pr_low`: the participation ratio of z_high and of z_low of the trained model,
  `pr_high_untrained`, `pr_low_untrained` of its untrained twin (same config and seed), and
  `pr_ratio` = pr_high / pr_low (the paper: ~3 trained, ~1 untrained);
- `residual_high`, `residual_low`: the forward residual (median over the examples) of the state's
  last update in the last segment: how far the recurrence still moves at the end.
The chart (curves.png) draws by update, on a common axis of segments (update u, counted from 1
over the trace, of a model with U updates per segment at u / U: segment k's updates lie in
(k - 1, k], so that HRM's 6 updates per segment and the transformer's one line up): the median
residual of z_high (solid) and z_low (dashed), the exact accuracy of the decoded answer, and the
participation ratios, each as the mean over a group with a band (or error bar) of ± the sample std.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hrm.analysis.compare import (COMPARE_OUTPUT, CSV_NAME, MISSING, PNG_NAME, _config_text, _csv_cell, _stats,
                                  differing_keys, fill_defaults, flatten_config)
from hrm.analysis.trace_files import SUMMARY_FILE, is_trace_folder, read_summary
from hrm.common import HrmError
from hrm.common.outputs import atomic_directory
from hrm.show.charts import fraction_axis, legend_below, mean_band, new_figure, run_styles, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FIGURES = ("exact", "token_accuracy", "pr_high", "pr_low", "pr_ratio", "pr_high_untrained", "pr_low_untrained",
           "residual_high", "residual_low")


def read_traces(folders: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(summaries, flattened configs) of the trace folders; one-line errors for a folder that is
    not a trace and for a trace given twice."""
    seen: dict[Path, str] = {}
    for folder in folders:
        resolved = Path(folder).resolve()
        if resolved in seen:
            raise HrmError(f"trace {seen[resolved]} is given twice")
        seen[resolved] = folder
        if not is_trace_folder(folder):
            raise HrmError(f"{folder} is not a trace folder (no {SUMMARY_FILE} of `hrm trace`)")
    summaries = [read_summary(folder) for folder in folders]
    # A key one run's config lacks is read as its default, as `hrm compare` does for runs (a trace
    # of a run from before the key existed); a trace from before the run's config was recorded in
    # it only knows the architecture.
    recorded = [i for i, summary in enumerate(summaries) if summary["protocol"].get("run_config")]
    filled = dict(zip(recorded, fill_defaults([flatten_config(summaries[i]["protocol"]["run_config"])
                                                for i in recorded])))
    configs = []
    for i, summary in enumerate(summaries):
        protocol = summary["protocol"]
        config = filled.get(i) or {"arch.name": protocol["arch"]}
        configs.append({**config, "trace.steps": protocol["segments"], "trace.split": protocol["split"],
                        "trace.examples": protocol["examples"]})
    return summaries, configs


def _last(rows: list[dict[str, Any]], state: str | None = None) -> dict[str, Any] | None:
    mine = [row for row in rows if state is None or row.get("state") == state]
    return mine[-1] if mine else None


def trace_figures(summary: dict[str, Any]) -> dict[str, float | None]:
    """The figures of one trace (see the module's docstring)."""
    last = _last(summary["accuracy_by_update"])
    ratio = summary["participation_ratio"]
    trained, untrained = ratio["trained"], ratio["untrained"]
    figures: dict[str, float | None] = {
        "exact": last["exact"], "token_accuracy": last["token_accuracy"],
        "pr_high": trained["high"], "pr_low": trained["low"],
        "pr_ratio": trained["high"] / trained["low"] if trained["high"] and trained["low"] else None,
        "pr_high_untrained": untrained["high"], "pr_low_untrained": untrained["low"]}
    for state in ("high", "low"):
        row = _last(summary["residual_by_update"], state)
        figures[f"residual_{state}"] = None if row is None else row["residual_median"]
    return figures


def compare_traces(folders: list[str], summaries: list[dict[str, Any]], configs: list[dict[str, Any]],
                   mean_over: str | None = None) -> dict[str, Any]:
    """{"differing_keys", "traces": [{"trace", "config", "figures"}], "grouped": None | {"mean_over",
    "keys", "groups": [{"config", "traces", "figures": {name: stats}}]}}."""
    if mean_over is not None and not any(mean_over in config for config in configs):
        raise HrmError(f"--mean-over {mean_over}: no trace's run config has that key (e.g. seed)")
    keys = differing_keys(configs)
    traces = [{"trace": folder, "config": {k: config[k] for k in keys if k in config},
               "figures": trace_figures(summary)} for folder, config, summary in zip(folders, configs, summaries)]
    grouped = None
    if mean_over is not None:
        group_keys = [k for k in keys if k != mean_over]
        groups: dict[str, dict[str, Any]] = {}
        for trace in traces:
            config = {k: trace["config"][k] for k in group_keys if k in trace["config"]}
            groups.setdefault(json.dumps(config, sort_keys=True, default=str),
                              {"config": config, "traces": []})["traces"].append(trace)
        grouped = {"mean_over": mean_over, "keys": group_keys, "groups": [
            {"config": g["config"], "traces": [t["trace"] for t in g["traces"]],
             "figures": {name: _stats([t["figures"][name] for t in g["traces"]]) for name in FIGURES}}
            for g in groups.values()]}
    return {"differing_keys": keys, "traces": traces, "grouped": grouped}


def _figure_text(name: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1%}" if name in ("exact", "token_accuracy") else f"{value:.3g}"


def _rows(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    grouped = result["grouped"]
    if grouped is None:
        keys = result["differing_keys"]
        header = ["trace", *keys, *FIGURES]
        rows = [[t["trace"], *(_config_text(t["config"].get(k, MISSING)) for k in keys),
                 *(_figure_text(name, t["figures"][name]) for name in FIGURES)] for t in result["traces"]]
        return header, rows

    def spread(name: str, stats: dict[str, Any] | None) -> str:
        if stats is None:
            return "-"
        std = "n/a" if stats["std"] is None else _figure_text(name, stats["std"])
        return f"{_figure_text(name, stats['mean'])} ± {std}"

    keys = grouped["keys"]
    header = [*keys, "n", *FIGURES]
    rows = [[*(_config_text(g["config"].get(k, MISSING)) for k in keys), str(len(g["traces"])),
             *(spread(name, g["figures"][name]) for name in FIGURES)] for g in grouped["groups"]]
    return header, rows


def format_trace_table(result: dict[str, Any]) -> str:
    """One row per trace (or per group, mean ± std), the differing config keys, then the figures."""
    header, rows = _rows(result)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    grouped = result["grouped"]
    title = f"traces, mean over {grouped['mean_over']} (sample std)" if grouped else "traces"
    return "\n".join([title, *lines])


def write_trace_csv(result: dict[str, Any], path: str | os.PathLike) -> None:
    """The table with raw numbers (per group: each figure's _mean, _std, _min, _max)."""
    grouped = result["grouped"]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if grouped is None:
            keys = result["differing_keys"]
            writer.writerow(["run", *keys, *FIGURES])  # "run": the first column every compare.csv has
            for t in result["traces"]:
                writer.writerow([t["trace"], *(_csv_cell(t["config"].get(k, MISSING)) for k in keys),
                                 *("" if t["figures"][n] is None else t["figures"][n] for n in FIGURES)])
            return
        keys = grouped["keys"]
        writer.writerow(["group", *keys, "n", "runs", *(f"{n}_{s}" for n in FIGURES for s in ("mean", "std", "min", "max"))])
        for i, g in enumerate(grouped["groups"]):
            row: list[Any] = [i, *(_csv_cell(g["config"].get(k, MISSING)) for k in keys), len(g["traces"]),
                              " ".join(g["traces"])]
            for name in FIGURES:
                stats = g["figures"][name]
                row += ["" if stats is None else "null" if stats[s] is None else stats[s]
                        for s in ("mean", "std", "min", "max")]
            writer.writerow(row)


def _by_segment(summary: dict[str, Any], rows: list[dict[str, Any]], value: str,
                state: str | None = None) -> list[tuple[float, float]]:
    """(segment position, value) of the rows (of one state): update u (from 1) at u / U, U the
    updates per segment, so that segment k ends at k."""
    per_segment = summary["protocol"]["updates_per_segment"]
    return [(row["update"] / per_segment, row[value]) for row in rows
            if (state is None or row.get("state") == state) and row.get(value) is not None]


def _label(keys: list[str], config: dict[str, Any]) -> str:
    text = " ".join(f"{k.split('.')[-1]}={_config_text(config[k])}" for k in keys if k in config)
    return text or "all traces"


def trace_comparison_figure(result: dict[str, Any], summaries: list[dict[str, Any]]) -> "Figure":
    """Residuals, exact accuracy by update, participation ratios: one curve (or bar) per trace, or
    per group as the mean with a band of ± the sample std."""
    of_folder = {t["trace"]: s for t, s in zip(result["traces"], summaries)}
    grouped = result["grouped"]
    if grouped is None:
        keys = result["differing_keys"]
        sets = [(_label(keys, t["config"]) if keys else t["trace"], [t["trace"]]) for t in result["traces"]]
        header = f"{len(sets)} trace(s)"
    else:
        sets = [(_label(grouped["keys"], g["config"]), g["traces"]) for g in grouped["groups"]]
        sizes = sorted({len(members) for _, members in sets})
        header = f"{len(sets)} group(s), mean ± std over {grouped['mean_over']} ({'/'.join(map(str, sizes))} each)"
    figure, (residual_axis, exact_axis, pr_axis) = new_figure(1, 3, title=header)
    residuals: list[float] = []
    for i, ((label, members), style) in enumerate(zip(sets, run_styles(len(sets)))):
        traced = [of_folder[m] for m in members]
        for state, dash in (("high", "-"), ("low", "--")):
            curves = [_by_segment(s, s["residual_by_update"], "residual_median", state) for s in traced]
            if any(curves):
                drawn = mean_band(residual_axis, curves, run=i, **{**style, "linestyle": dash})
                residuals += [mean for _, mean, _ in drawn if mean > 0]
        mean_band(exact_axis, [_by_segment(s, s["accuracy_by_update"], "exact") for s in traced], label=label,
                  run=i, **style)
    residual_axis.set_title("forward residual (median over examples)\nsolid: z_high, dashed: z_low", fontsize="medium")
    residual_axis.set_xlabel("segment")
    if residuals:
        residual_axis.set_yscale("log")  # as in the paper's figure, whatever the span
    exact_axis.set_title("exact accuracy of the decoded answer")
    exact_axis.set_xlabel("segment")
    fraction_axis(exact_axis)
    names = ("pr_high", "pr_low", "pr_high_untrained", "pr_low_untrained")
    width = 0.8 / max(1, len(sets))
    for i, ((label, members), style) in enumerate(zip(sets, run_styles(len(sets)))):
        values = [[t["figures"][n] for t in result["traces"] if t["trace"] in members] for n in names]
        stats = [_stats(v) for v in values]
        # no bar where a model has no such state (the transformer's z_low is never updated)
        pr_axis.bar([j + i * width for j in range(len(names))], [s["mean"] if s else float("nan") for s in stats], width,
                    yerr=[(s["std"] or 0) if s else 0 for s in stats], color=style["color"], label=label, capsize=3)
    pr_axis.set_xticks([j + 0.4 - width / 2 for j in range(len(names))],
                       ["z_high", "z_low", "z_high\nuntrained", "z_low\nuntrained"])
    pr_axis.set_title("participation ratio")
    legend_below(figure, *exact_axis.get_legend_handles_labels())
    return figure


def write_trace_comparison(result: dict[str, Any], summaries: list[dict[str, Any]], out: str | os.PathLike, *,
                           force: bool = False) -> Path:
    """OUT/compare.csv (the table) and OUT/curves.png (the chart), through the output rule."""
    with atomic_directory(out, COMPARE_OUTPUT, force=force) as tmp:
        tmp.mkdir()
        write_trace_csv(result, tmp / CSV_NAME)
        save_figure(trace_comparison_figure(result, summaries), tmp / PNG_NAME)
    return Path(out)
