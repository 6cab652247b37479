#!/usr/bin/env bash
# The learning ladder (benchmarks/README.md, "Learning ladder"): small tasks that a 2-core CPU trains
# in minutes and that land between 30% and 80% exact accuracy, so that a better method can show it.
#
#   examples/ladder.sh data RUNG DATADIR          build RUNG's dataset (LADDER_AUG=K: K augmented versions
#                                                 per train puzzle; LADDER_TEST_AUG=K: per test puzzle,
#                                                 for voting; the puzzles stay the same)
#   examples/ladder.sh train RUNG OUTDIR [k=v...] build OUTDIR/data, train OUTDIR/run with
#                                                 examples/ladder_RUNG.yaml, print the final test
#                                                 metrics as one JSON line
# Rungs:
#   sudoku4   4x4 sudoku, exactly 9 of 16 cells blank, 50 train puzzles x 4 versions, 300 distinct test
#             puzzles (none a train puzzle up to symmetry): data-limited, as Sudoku-Extreme-1k is
#   maze6     6x6 mazes whose shortest S->G path (6+ moves) is unique, 1000 train mazes x 8 dihedral
#             versions, 300 test mazes (none a train maze up to symmetry): search-limited, the model
#             has not yet fitted the train mazes when the run ends
#   sudoku9   9x9 sudoku, exactly 32 of 81 cells blank, 1000 train puzzles x 101 versions, 500 distinct
#             test puzzles: search-limited, with TRM's token-MLP mixer (arch.mlp_t) in HRM's blocks
set -euo pipefail
usage() {
    echo "usage: $0 data RUNG DATADIR | $0 train RUNG OUTDIR [key=value overrides for hrm train]   (RUNG: sudoku4, maze6, sudoku9)" >&2
    exit 2
}
[ $# -ge 3 ] || usage
action=$1 rung=$2 out=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
if command -v hrm >/dev/null 2>&1; then
    hrm=(hrm)
else  # a source checkout without `pip install -e .`
    export PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}"
    hrm=(python -m hrm)
fi

build() {  # build RUNG's data into $1
    case $rung in
        sudoku4)
            "${hrm[@]}" build-data sudoku --box 2 --blanks 9 --train-size 50 --test-size 300 \
                --aug "${LADDER_AUG:-3}" --test-aug "${LADDER_TEST_AUG:-0}" --seed 0 --out "$1" --force --quiet > /dev/null ;;
        maze6)  # LADDER_AUG: K of the 7 other dihedral versions (at most 7)
            "${hrm[@]}" build-data maze --size 6 --min-path 6 --unique-path --train-size 1000 --test-size 300 \
                --aug "${LADDER_AUG:-7}" --test-aug "${LADDER_TEST_AUG:-0}" --seed 0 --out "$1" --force --quiet > /dev/null ;;
        sudoku9)
            "${hrm[@]}" build-data sudoku --box 3 --blanks 32 --train-size 1000 --test-size 500 \
                --aug "${LADDER_AUG:-100}" --test-aug "${LADDER_TEST_AUG:-0}" --seed 0 --out "$1" --force --quiet > /dev/null ;;
        *) echo "error: unknown rung '$rung' (known: sudoku4, maze6, sudoku9)" >&2; exit 2 ;;
    esac
}

case $action in
    data) [ $# -eq 0 ] || usage; build "$out" ;;
    train)
        build "$out/data"
        "${hrm[@]}" train --data "$out/data" --out "$out/run" --config "$here/ladder_$rung.yaml" \
            --device cpu --force --quiet --json "$@" ;;
    *) usage ;;
esac
