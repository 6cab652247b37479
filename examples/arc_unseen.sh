#!/usr/bin/env bash
# ARC on unseen tasks, end to end (the competition setting):
#   pretrain on ARC-AGI-1 training tasks only -> build the evaluation tasks with their solutions
#   withheld -> test-time training from the pretrained run -> predict -> submission -> score it
#   against the withheld solutions with `hrm score-submission`.
# The evaluation tasks' solutions are split off into OUTDIR/source/withheld/ before anything else
# runs; every step up to the submission reads only OUTDIR/source/{pretrain,unseen}/.
# Usage: examples/arc_unseen.sh OUTDIR
# Prints the scorer's JSON (score_by_output, score_by_task, ...) as its last line on stdout.
#
# Size, by the environment variable ARC_UNSEEN_SIZE:
#   small (default)  8 training + 8 evaluation tasks, 8 augmentations, a tiny model; minutes on a
#                    2-core CPU (README: measured figures)
#   full             all 400 training and 400 evaluation tasks, 1000 augmentations, the paper's
#                    model (examples/arc1.yaml), then examples/arc_ttt.yaml; meant for GPUs, with
#                    HRM_TRAIN="torchrun --nproc-per-node 8 -m hrm train" for several.
# Finer knobs (defaults by size): ARC_UNSEEN_TASKS (tasks taken from each subset), ARC_UNSEEN_AUG,
# ARC_UNSEEN_PRETRAIN_EPOCHS, ARC_UNSEEN_TTT_EPOCHS, ARC_UNSEEN_SOURCE (a folder holding
# <prefix>_{training,evaluation}_{challenges,solutions}.json; default: the copy packaged with hrm)
# and ARC_UNSEEN_PREFIX (that <prefix>, default arc-agi).
set -euo pipefail
if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR   (ARC_UNSEEN_SIZE=small|full, see the comments at the top)" >&2
    exit 2
fi
out=$1
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python3}
if ! "$python" -c "import hrm.cli" 2>/dev/null; then  # a source checkout without `pip install -e .`
    export PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}"
fi
hrm=("$python" -m hrm)
read -r -a train <<< "${HRM_TRAIN:-$python -m hrm train}"

size=${ARC_UNSEEN_SIZE:-small}
case $size in
    small)
        tasks=${ARC_UNSEEN_TASKS:-8}; aug=${ARC_UNSEEN_AUG:-8}
        pretrain_epochs=${ARC_UNSEEN_PRETRAIN_EPOCHS:-30}; ttt_epochs=${ARC_UNSEEN_TTT_EPOCHS:-30}
        pretrain_config=(); device=(--device cpu)
        # a tiny HRM (2 x 1 layer of width 32, 1 H x 1 L cycle, 2 segments): seq_len 900 stays, so
        # this is about speed, not accuracy
        small=(global_batch_size=16 lr=1e-3 lr_min_ratio=0.1 log_interval=5 keep_checkpoints=1
               arch.hidden_size=32 arch.num_heads=2 arch.H_layers=1 arch.L_layers=1 arch.H_cycles=1
               arch.L_cycles=1 arch.puzzle_emb_ndim=32 arch.halt_max_steps=2)
        pretrain_extra=("${small[@]}" lr_warmup_steps=10 "epochs=$pretrain_epochs" "eval_interval=$pretrain_epochs")
        # halt_max_steps stays the pretrained 2 (the preset's 10 is for the real size)
        ttt_extra=(global_batch_size=16 lr=1e-3 lr_warmup_steps=5 log_interval=5 keep_checkpoints=1
                   "epochs=$ttt_epochs" "eval_interval=$ttt_epochs" arch.halt_max_steps=2 time_budget=900)
        ;;
    full)
        tasks=${ARC_UNSEEN_TASKS:-0}; aug=${ARC_UNSEEN_AUG:-1000}
        pretrain_epochs=${ARC_UNSEEN_PRETRAIN_EPOCHS:-100000}; ttt_epochs=${ARC_UNSEEN_TTT_EPOCHS:-2000}
        pretrain_config=(--config "$here/arc1.yaml"); device=()
        pretrain_extra=("epochs=$pretrain_epochs")
        ttt_extra=("epochs=$ttt_epochs")
        ;;
    *)
        echo "error: ARC_UNSEEN_SIZE must be small or full, got $size" >&2
        exit 2
        ;;
esac
mkdir -p "$out"

# 1. The sources: pretraining tasks (with solutions), the unseen challenges alone, and the
#    withheld solutions, each in its own folder (tasks=0: every task).
"$python" - "$out/source" "$tasks" "${ARC_UNSEEN_SOURCE:-}" "${ARC_UNSEEN_PREFIX:-arc-agi}" <<'PY'
import contextlib, json, sys
from pathlib import Path
from hrm.builders.arc_io import packaged_data, read_json

target, count, source, prefix = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]

def find(folder, name):
    return next(p for p in (folder / (name + s) for s in ("", ".xz", ".gz")) if p.is_file())

with (contextlib.nullcontext(Path(source)) if source else packaged_data()) as folder:
    files = {(subset, kind): read_json(find(folder, f"{prefix}_{subset}_{kind}.json"))
             for subset in ("training", "evaluation") for kind in ("challenges", "solutions")}

def take(subset, kind):
    names = sorted(files[(subset, "challenges")])
    names = names[:count] if count > 0 else names
    return {name: files[(subset, kind)][name] for name in names}

for folder, subset, kinds in (("pretrain", "training", ("challenges", "solutions")),
                              ("unseen", "evaluation", ("challenges",)),
                              ("withheld", "evaluation", ("solutions",))):
    (target / folder).mkdir(parents=True, exist_ok=True)
    for kind in kinds:
        (target / folder / f"arc_{subset}_{kind}.json").write_text(json.dumps(take(subset, kind)))
PY

# 2. Pretraining data: the training tasks only (their test pairs are the test split).
"${hrm[@]}" build-data arc --out "$out/pretrain_data" --input "$out/source/pretrain/arc" --subsets training \
    --test-set training --aug "$aug" --seed 0 --force --quiet > /dev/null
# 3. Pretraining.
"${train[@]}" --data "$out/pretrain_data" --out "$out/pretrain_run" ${pretrain_config[@]+"${pretrain_config[@]}"} \
    ${device[@]+"${device[@]}"} --force --quiet --json "${pretrain_extra[@]}" > "$out/pretrain_result.json"
# 4. The unseen tasks, without solutions: demonstration pairs (augmented) to train, test inputs to test.
"${hrm[@]}" build-data arc --out "$out/ttt_data" --input "$out/source/unseen/arc" --subsets evaluation \
    --test-set evaluation --no-solutions --aug "$aug" --seed 1 --force --quiet > /dev/null
# 5. Test-time training from the pretrained run (new identifiers start at the mean of its table).
"${train[@]}" --data "$out/ttt_data" --out "$out/ttt_run" --config "$here/arc_ttt.yaml" \
    --init-from "$out/pretrain_run" ${device[@]+"${device[@]}"} --force --json "${ttt_extra[@]}" \
    > "$out/ttt_result.json" 2> "$out/ttt_log.txt"
# 6. Predict and write the submission (nothing can be scored here: no solutions).
"${hrm[@]}" eval --checkpoint "$out/ttt_run" --data "$out/ttt_data" --vote 2 --out "$out/eval" \
    --submission "$out/submission.json" ${device[@]+"${device[@]}"} --force --quiet --json > "$out/eval_result.json"
# 7. Score the submission against the withheld solutions.
"${hrm[@]}" score-submission "$out/submission.json" \
    --solutions "$out/source/withheld/arc_evaluation_solutions.json" --json
