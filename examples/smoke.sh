#!/usr/bin/env bash
# CPU smoke run: build 4x4 sudoku, train the small HRM of examples/smoke.yaml (~4 minutes on 2 idle cores),
# print the final test metrics as one JSON line (exact_accuracy, accuracy, ...).
# Usage: examples/smoke.sh OUTDIR [key=value overrides for hrm train, e.g. seed=1]
set -euo pipefail
if [ $# -lt 1 ]; then
    echo "usage: $0 OUTDIR [key=value overrides for hrm train]" >&2
    exit 2
fi
out=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
if command -v hrm >/dev/null 2>&1; then
    hrm=(hrm)
else  # a source checkout without `pip install -e .`
    export PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}"
    hrm=(python -m hrm)
fi
# 4x4 sudoku with 8 of 16 cells blank (labels differ from inputs in half the positions): 600 train
# puzzles x 32 versions, 500 distinct test puzzles none of which is a train puzzle up to symmetry.
"${hrm[@]}" build-data sudoku --box 2 --blanks 8 --out "$out/data" --train-size 600 --test-size 500 \
    --aug 31 --seed 0 --force --quiet > /dev/null
"${hrm[@]}" train --data "$out/data" --out "$out/run" --config "$here/smoke.yaml" --device cpu --force --quiet --json "$@"
