#!/usr/bin/env bash
# Ablation: how do H_cycles (N) and L_cycles (T) matter? An N x T grid of HRM on a ladder rung
# (N, T in 1 2 3; the paper used 2 x 2 everywhere), SEEDS seeds each (default 0 1 2); ends with
# `hrm compare` writing OUTDIR/compare/. Compute per segment grows as N x (T + 1) blocks, so the
# wall time of each run is in the table too.
# Usage: examples/ablations/cycles.sh OUTDIR [RUNG (default sudoku4)]   CYCLES="1 2 3" to change the grid
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [RUNG]" >&2; exit 2; }
out=$1 rung=${2:-sudoku4}
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/ablations/common.sh"
"$here/ladder.sh" data "$rung" "$out/data"
for seed in ${SEEDS:-0 1 2}; do
    for high in ${CYCLES:-1 2 3}; do
        for low in ${CYCLES:-1 2 3}; do
            train "$out/runs/H${high}_L${low}_s$seed" "$rung" "$out/data" seed="$seed" arch.H_cycles="$high" \
                arch.L_cycles="$low"
        done
    done
done
compare "$out"
