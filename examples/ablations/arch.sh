#!/usr/bin/env bash
# Ablation: does the H/L hierarchy beat one network applied as often? HRM vs TRM vs the plain
# transformer baseline on a ladder rung, at equal forward compute per segment (6 block
# applications each), 3 seeds each; ends with `hrm compare` writing OUTDIR/compare/.
#   HRM          H_cycles 2 x (L_cycles 2 x 1 L block + 1 H block)       = 6 blocks, one-step gradient
#   HRM bptt all the same, with gradient through the whole segment (arch.bptt=all; issue 24)
#   TRM          H_cycles 2 recursions x (L_cycles 2 + 1) x 1 block       = 6 blocks, gradient through the last recursion
#   transformer  6 blocks (H_layers 3 + L_layers 3) once per segment       = 6 blocks, gradient through all
# (Equal forward compute, not equal parameters: the transformer has 6 blocks of weights, HRM 2, TRM 1.)
# Deep supervision and an equal wall-clock budget (the maze6 preset has one segment and no budget):
# more segments, and more epochs than any run finishes in the budget, so that time_budget stops each
# one after the same seconds (the learning-rate schedule then spans the epochs, not the budget):
#   TRAIN_ARGS="arch.halt_max_steps=8 epochs=2000 time_budget=720" examples/ablations/arch.sh OUTDIR maze6
# Usage: examples/ablations/arch.sh OUTDIR [RUNG (default sudoku4)]   SEEDS="0 1 2" to change the seeds
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [RUNG]" >&2; exit 2; }
out=$1 rung=${2:-sudoku4}
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/ablations/common.sh"
"$here/ladder.sh" data "$rung" "$out/data"
for seed in ${SEEDS:-0 1 2}; do
    train "$out/runs/hrm_s$seed" "$rung" "$out/data" seed="$seed"
    train "$out/runs/hrm_bpttall_s$seed" "$rung" "$out/data" seed="$seed" arch.bptt=all
    train "$out/runs/trm_s$seed" "$rung" "$out/data" seed="$seed" arch.name=trm arch.H_cycles=2 arch.L_cycles=2 \
        arch.L_layers=1 arch.puzzle_emb_len=0
    train "$out/runs/transformer_s$seed" "$rung" "$out/data" seed="$seed" arch.name=transformer arch.H_layers=3 \
        arch.L_layers=3
done
compare "$out"
