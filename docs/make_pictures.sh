#!/usr/bin/env bash
# Regenerates the pictures of the README's "Looking at things" with hrm itself, from small real
# datasets and CPU smoke runs (about 45 minutes on 2 busy cores; the ARC model is barely trained,
# which is what its picture shows). Run from the repository root: bash docs/make_pictures.sh
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
hrm() { python -m hrm "$@"; }

# 1. a dataset example: a generated 9x9 sudoku
hrm build-data sudoku --out "$work/s9" --train-size 8 --test-size 4 --aug 1 -q
rm -f docs/show_*.png  # remade below (hrm replaces only pictures it drew, and these may predate that)
hrm show "$work/s9" --split test --index 0 --png docs/show_sudoku.png -q >/dev/null

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
hrm show "$work/arc" --task 00576224 --png docs/show_arc_task.png -q >/dev/null

# 3. a model's answers: a tiny HRM trained for ~100 steps on those 7 tasks, top-2 voted attempts
hrm train --data "$work/arc" --out "$work/runarc" --config examples/smoke.yaml max_steps=120 \
    global_batch_size=16 epochs=80 eval_interval=20 arch.halt_max_steps=4 arch.puzzle_emb_ndim=64 -q >/dev/null
hrm eval --checkpoint "$work/runarc" --data "$work/arc" --predictions "$work/arc.parquet" -q >/dev/null
hrm show --predictions "$work/arc.parquet" --data "$work/arc" --task 009d5c81 --png docs/show_predictions.png -q >/dev/null

# 4. training curves: the 4x4 sudoku smoke run (examples/smoke.sh's data and preset, evaluated more often)
hrm build-data sudoku --out "$work/s4" --box 2 --blanks 8 --train-size 600 --test-size 500 --aug 31 -q
hrm train --data "$work/s4" --out "$work/run4" --config examples/smoke.yaml eval_interval=16 -q >/dev/null
hrm show "$work/run4" --png docs/show_curves.png -q
