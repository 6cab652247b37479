#!/usr/bin/env bash
# Ablation: how much does the vote pool matter? Scores trained runs of a ladder rung on its test
# puzzles with 8 versions each (the original + 7 augmented; the same puzzles as the rung's test
# split) and reports `hrm eval --pool`: pass@1 and pass@2 when each puzzle votes with only N of its
# versions, N in POOL (default 1,2,3,4,6,8), averaged over every possible pool (--pool-draws 70 =
# C(8,4): exact for every N). Writes OUTDIR/<run>/ (metrics.json, pool.png) and OUTDIR/<run>.json.
# Usage: examples/ablations/pool.sh OUTDIR RUN [RUN...]   (RUNG=sudoku4: the rung the runs trained on)
#   e.g. examples/ablations/pool.sh out/pool out/arch/runs/hrm_s*/
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 OUTDIR RUN [RUN...]" >&2; exit 2; }
out=$1
shift
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/ablations/common.sh"
LADDER_TEST_AUG=7 "$here/ladder.sh" data "${RUNG:-sudoku4}" "$out/data"
for run in "$@"; do
    name=$(basename "$run")
    "${hrm[@]}" eval --checkpoint "$run" --data "$out/data" --pool "${POOL:-1,2,3,4,6,8}" --pool-draws 70 \
        --out "$out/$name" --force --quiet --json > "$out/$name.json"
    echo "== $name"
    "${hrm[@]}" eval --predictions "$out/$name/predictions.parquet" --data "$out/data" --pool "${POOL:-1,2,3,4,6,8}" \
        --pool-draws 70 --quiet
done
