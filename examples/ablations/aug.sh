#!/usr/bin/env bash
# Ablation: how much does the training augmentation count matter? HRM on a ladder rung trained on
# the same train puzzles with AUGS augmented versions each (default 0 1 3 7 31; maze6 has at most 7,
# so AUGS="0 1 3 7" there), SEEDS seeds each (default 0 1 2), always scored on the same unaugmented
# test puzzles; ends with `hrm compare` writing OUTDIR/compare/.
# Usage: examples/ablations/aug.sh OUTDIR [RUNG (default sudoku4)]
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [RUNG]" >&2; exit 2; }
out=$1 rung=${2:-sudoku4}
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/ablations/common.sh"
for aug in ${AUGS:-0 1 3 7 31}; do
    LADDER_AUG=$aug "$here/ladder.sh" data "$rung" "$out/data_aug$aug"
done
for seed in ${SEEDS:-0 1 2}; do
    for aug in ${AUGS:-0 1 3 7 31}; do
        train "$out/runs/aug${aug}_s$seed" "$rung" "$out/data_aug$aug" seed="$seed"
    done
done
compare "$out"
