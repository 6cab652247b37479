#!/usr/bin/env bash
# Redraws the pictures under docs/ with hrm itself, without training anything:
# - the puzzle pictures from datasets built here in seconds (a generated sudoku, ARC tasks from
#   the copy shipped with hrm);
# - every chart, and the model's answers, from the small files kept under docs/data/NAME/, one
#   folder per picture docs/NAME.png: each run's config.yaml + metrics.jsonl (curves, comparisons),
#   an evaluation's metrics.json (the vote pool), a predictions table (the answers).
# A picture whose docs/data/NAME/ is missing is left as it is, with a note: its runs have to be
# repeated first (the commands are below), then kept with `keep`.
#
#   bash docs/make_pictures.sh                     redraw every picture (from the repository root)
#   bash docs/make_pictures.sh keep NAME RUN...    keep the small files of RUN... as docs/data/NAME/
#                                                  (a run's config.yaml, metrics.jsonl, metrics.json; a
#                                                  trace folder's summary.json)
#   bash docs/make_pictures.sh keep-steps NAME TRACE I   keep what TRACE's steps_I.png is drawn from
#                                                  (summary.json, example I's rows of trace.parquet)
#
# Where each docs/data/NAME comes from (the runs take 5-60 CPU-minutes each, see docs/ablations.md):
#   show_curves          the 4x4 sudoku smoke run: hrm build-data sudoku --out S4 --box 2 --blanks 8
#                        --train-size 600 --test-size 500 --aug 31; hrm train --data S4 --out RUN
#                        --config examples/smoke.yaml eval_interval=16; keep show_curves RUN
#   ablation_arch        examples/ablations/arch.sh OUT;        keep ablation_arch OUT/runs/*
#   ablation_arch_maze6  examples/ablations/arch.sh OUT maze6;  keep ablation_arch_maze6 OUT/runs/*
#   ablation_arch_maze6_deep  TRAIN_ARGS="arch.halt_max_steps=8 epochs=2000 time_budget=720"
#                        examples/ablations/arch.sh OUT maze6; keep ablation_arch_maze6_deep OUT/runs/*
#   ablation_grad        examples/ablations/grad.sh OUT;        keep ablation_grad OUT/runs/*
#   ablation_grad_maze6  SCHEDULE=none examples/ablations/grad.sh OUT maze6; keep ablation_grad_maze6 OUT/runs/*
#   ablation_grad_sudoku9  SCHEDULE=none examples/ablations/grad.sh OUT sudoku9; keep ablation_grad_sudoku9 OUT/runs/*
#   ablation_cycles      examples/ablations/cycles.sh OUT;      keep ablation_cycles OUT/runs/*
#   ablation_aug         examples/ablations/aug.sh OUT;         keep ablation_aug OUT/runs/*
#   ablation_pool        the `hrm eval --pool 1,2,3,4,6,8 --pool-draws 70 --out EVAL` of HRM seed 2
#                        (examples/ablations/pool.sh);        keep ablation_pool EVAL
#   inside_sudoku4       examples/ablations/arch.sh OUT; hrm trace RUN --data OUT/data --out RUN/trace for
#                        each RUN in OUT/runs/*/;             keep inside_sudoku4 OUT/runs/*/trace (docs/inside.md)
#   inside_maze6         the same with TRAIN_ARGS="arch.halt_max_steps=8 epochs=2000 time_budget=720" and
#                        OUT maze6;                           keep inside_maze6 OUT/runs/*/trace
#   inside_steps_*       keep-steps inside_steps_RUNG_ARCH OUT/runs/ARCH_s0/trace I (the example named in
#                        docs/inside.md), drawn on the rung's data rebuilt by examples/ladder.sh data
#   show_predictions     the tiny ARC model (hrm train --data ARC --out RUN --config examples/smoke.yaml
#                        max_steps=120 global_batch_size=16 epochs=80 eval_interval=20
#                        arch.halt_max_steps=4 arch.puzzle_emb_ndim=64, ARC as built in step 2 below),
#                        then hrm eval --checkpoint RUN --data ARC --predictions
#                        docs/data/show_predictions/predictions.parquet
set -euo pipefail
hrm() { python -m hrm "$@"; }
data=docs/data

if [ "${1:-}" = keep ]; then
    [ $# -ge 3 ] || { echo "usage: bash docs/make_pictures.sh keep NAME RUN..." >&2; exit 2; }
    name=$2
    shift 2
    for run in "$@"; do
        run=${run%/}
        target="$data/$name/$(basename "$run")"
        mkdir -p "$target"
        for file in config.yaml metrics.jsonl metrics.json summary.json; do
            [ -f "$run/$file" ] && cp "$run/$file" "$target/"
        done
        [ -n "$(ls -A "$target")" ] || { echo "error: $run holds no config.yaml, metrics.jsonl, metrics.json or summary.json" >&2; exit 1; }
    done
    echo "kept $# folder(s) in $data/$name; now run: bash docs/make_pictures.sh"
    exit 0
fi
if [ "${1:-}" = keep-steps ]; then
    [ $# -eq 4 ] || { echo "usage: bash docs/make_pictures.sh keep-steps NAME TRACE INDEX" >&2; exit 2; }
    mkdir -p "$data/$2"
    python - "$3" "$4" "$data/$2" <<'PY'
import json, shutil, sys
import pyarrow.compute as pc, pyarrow.parquet as pq
trace, index, target = sys.argv[1], int(sys.argv[2]), sys.argv[3]
table = pq.read_table(f"{trace}/trace.parquet")
rows = table.filter(pc.equal(table["example"], index))
if not rows.num_rows:
    sys.exit(f"error: example {index} was not traced in {trace}")
pq.write_table(rows, f"{target}/trace.parquet")
summary = json.load(open(f"{trace}/summary.json"))
summary["protocol"]["index"] = [index]
open(f"{target}/summary.json", "w").write(json.dumps(summary, indent=2) + "\n")
PY
    echo "kept example $4 of $3 in $data/$2; now run: bash docs/make_pictures.sh"
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
missing=()
have() {  # have NAME: docs/data/NAME holds something to draw from (otherwise the picture stays)
    if [ -n "$(ls -A "$data/$1" 2>/dev/null)" ]; then
        return 0
    fi
    missing+=("$1")
    return 1
}

# Pictures from before hrm marked the ones it drew would be refused by --force: remade below.
rm -f docs/show_sudoku.png docs/show_arc_task.png
have show_predictions && rm -f docs/show_predictions.png
have show_curves && rm -f docs/show_curves.png
missing=()

# 1. a dataset example: a generated 9x9 sudoku
hrm build-data sudoku --out "$work/s9" --train-size 8 --test-size 4 --aug 1 -q
hrm show "$work/s9" --split test --index 0 --png docs/show_sudoku.png --force -q >/dev/null

# 2. an ARC task: 3 training + 4 evaluation tasks of ARC-AGI-1 (per-task JSON), 8 versions each
python - "$work/arcsrc" <<'PY'
import json, lzma, sys
from pathlib import Path
source = Path("builders/arc_data")  # the copy shipped with hrm (xz-compressed Kaggle files)
out = Path(sys.argv[1])
for subset, names in (("training", ["007bbfb7", "00d62c1b", "0d3d703e"]),
                      ("evaluation", ["00576224", "009d5c81", "00dbd492", "03560426"])):
    challenges = json.loads(lzma.open(source / f"arc-agi_{subset}_challenges.json.xz").read())
    solutions = json.loads(lzma.open(source / f"arc-agi_{subset}_solutions.json.xz").read())
    (out / subset).mkdir(parents=True, exist_ok=True)
    for name in names:
        task = challenges[name]
        for pair, solution in zip(task["test"], solutions[name]):
            pair["output"] = solution
        (out / subset / f"{name}.json").write_text(json.dumps(task))
PY
hrm build-data arc --out "$work/arc" --input "$work/arcsrc" --subsets training evaluation --aug 8 -q
hrm show "$work/arc" --task 00576224 --png docs/show_arc_task.png --force -q >/dev/null

# 3. a model's answers: the tiny ARC model's top-2 voted attempts on those tasks
if have show_predictions; then
    hrm show --predictions "$data/show_predictions/predictions.parquet" --data "$work/arc" --task 009d5c81 \
        --png docs/show_predictions.png --force -q >/dev/null
fi

# 4. training curves: the 4x4 sudoku smoke run
if have show_curves; then
    hrm show "$data"/show_curves/*/ --png docs/show_curves.png --force -q >/dev/null
fi

# 5. the ablations (docs/ablations.md): mean ± std over the seeds of each setting
for name in ablation_arch ablation_arch_maze6 ablation_arch_maze6_deep ablation_cycles ablation_aug ablation_grad ablation_grad_maze6 ablation_grad_sudoku9; do
    if have "$name"; then
        hrm compare "$data/$name"/*/ --mean-over seed --out "$work/$name" -q >/dev/null
        cp "$work/$name/curves.png" "docs/$name.png"
    fi
done
if have ablation_pool; then  # the vote-pool curve of one evaluation, from its metrics.json
    python - "$data"/ablation_pool/*/metrics.json <<'PY'
import json, sys
from hrm.eval.pool import plot_pool_curve
summary = json.load(open(sys.argv[1]))
plot_pool_curve(summary["accuracy_by_pool"], "docs/ablation_pool.png", title="sudoku test: vote pool", force=True)
PY
fi

# 6. inside the recurrence (docs/inside.md): the traces of each rung compared, mean ± std over seeds,
#    and one example's answer update by update
for rung in sudoku4 maze6; do
    if have "inside_$rung"; then
        hrm compare "$data/inside_$rung"/*/ --mean-over seed --out "$work/inside_$rung" -q >/dev/null
        cp "$work/inside_$rung/curves.png" "docs/inside_$rung.png"
    fi
done
for kept in "$data"/inside_steps_*/; do
    [ -f "$kept/summary.json" ] || continue
    name=$(basename "$kept") rung=$(basename "$kept" | cut -d_ -f3)
    [ -d "$work/data_$rung" ] || bash examples/ladder.sh data "$rung" "$work/data_$rung"
    cp -r "$kept" "$work/$name"
    index=$(python -c 'import json, sys; print(json.load(open(sys.argv[1]))["protocol"]["index"][0])' "$kept/summary.json")
    hrm show "$work/$name" --index "$index" --data "$work/data_$rung" -q >/dev/null
    cp "$work/$name/steps_$index.png" "docs/$name.png"
done

if [ ${#missing[@]} -gt 0 ]; then
    echo "left as they are (no data kept under $data/ yet; see the top of this script): ${missing[*]/%/.png}" >&2
fi
