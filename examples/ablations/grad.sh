#!/usr/bin/env bash
# Ablation (issue 24): does the one-step gradient cost accuracy, and what does it save? On a ladder
# rung, SEEDS seeds each (default 0 1 2), with the gradient depth arch.bptt:
#   hrm_bptt1       HRM as the preset has it: the paper's one-step gradient (last L and last H update)
#   hrm_bptt2       HRM, gradient through the last 2 low-level steps and the high-level step after them
#   hrm_bpttall     HRM, backpropagation through the whole segment (all H_cycles x L_cycles low steps)
#   trm_bptt1       TRM at arch.sh's equal forward compute, gradient through its last recursion (TRM's rule)
#   trm_bpttall     TRM, gradient through every recursion
# and a depth curriculum against fixed depth at equal wall time:
#   hrm_curriculum  HRM with the depth schedule SCHEDULE (default CGAR-like: (H_cycles, L_cycles) =
#                   (1, 1) -> (1, 2) from 25% of training -> (2, 2), the preset's, from 50%)
#   hrm_equal_time  HRM at the preset's fixed depth with its epochs scaled by (the curriculum runs'
#                   mean wall time) / (hrm_bptt1's), so that it gets the curriculum's time budget
# Ends with `hrm compare --mean-over seed` writing OUTDIR/compare/ and OUTDIR/compare.json: final
# exact accuracy ± std, best, wall time, examples/s and peak memory per setting.
# Wall times are compared: leave PARALLEL at 1 and the machine otherwise idle.
# Usage: examples/ablations/grad.sh OUTDIR [RUNG (default sudoku4; maze6; sudoku9)]
#   SEEDS="0 1 2"  SCHEDULE="arch.H_cycles=[[0,1],[0.5,2]] arch.L_cycles=[[0,1],[0.25,2]]"  TRAIN_ARGS=...
#   SCHEDULE=none: the gradient depths only, without the curriculum and equal-time runs
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [RUNG]" >&2; exit 2; }
out=$1 rung=${2:-sudoku4}
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/ablations/common.sh"
read -r -a schedule <<< "${SCHEDULE:-arch.H_cycles=[[0,1],[0.5,2]] arch.L_cycles=[[0,1],[0.25,2]]}"
trm=(arch.name=trm arch.H_cycles=2 arch.L_cycles=2 arch.L_layers=1 arch.puzzle_emb_len=0)  # as arch.sh
"$here/ladder.sh" data "$rung" "$out/data"
for seed in ${SEEDS:-0 1 2}; do
    for bptt in 1 2 all; do
        train "$out/runs/hrm_bptt${bptt}_s$seed" "$rung" "$out/data" seed="$seed" arch.bptt="$bptt"
    done
    for bptt in 1 all; do
        train "$out/runs/trm_bptt${bptt}_s$seed" "$rung" "$out/data" seed="$seed" "${trm[@]}" arch.bptt="$bptt"
    done
    if [ "${schedule[*]}" != none ]; then
        train "$out/runs/hrm_curriculum_s$seed" "$rung" "$out/data" seed="$seed" "${schedule[@]}"
    fi
done
wait
if [ "${schedule[*]}" = none ]; then
    compare "$out"
    exit
fi

# Equal wall time: the fixed-depth HRM again, with as many epochs as fit in the curriculum's time.
mean_time() {  # the mean training time (seconds) in the final metrics of the given runs
    python3 -c 'import json, sys; t = [json.load(open(p))["time"] for p in sys.argv[1:]]; print(sum(t) / len(t))' "$@"
}
seeds=(${SEEDS:-0 1 2})
curriculum=$(mean_time $(for s in "${seeds[@]}"; do echo "$out/runs/hrm_curriculum_s$s.json"; done))
fixed=$(mean_time $(for s in "${seeds[@]}"; do echo "$out/runs/hrm_bptt1_s$s.json"; done))
preset_epochs=$(python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["epochs"])' "$here/ladder_$rung.yaml")
epochs=$(python3 -c 'import sys; print(max(1, round(int(sys.argv[1]) * float(sys.argv[2]) / float(sys.argv[3]))))' \
    "$preset_epochs" "$curriculum" "$fixed")
echo "equal wall time: curriculum ${curriculum}s, fixed depth ${fixed}s for $preset_epochs epochs -> $epochs epochs"
for seed in "${seeds[@]}"; do
    train "$out/runs/hrm_equal_time_s$seed" "$rung" "$out/data" seed="$seed" epochs="$epochs"
done
compare "$out"
