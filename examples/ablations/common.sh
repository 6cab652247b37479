# Shared by the ablation scripts (sourced): `train RUN RUNG DATA [key=value...]` trains one run with the
# rung's preset (final metrics in RUN.json) unless RUN.json exists (an interrupted ablation continues
# where it stopped: an unfinished run is trained again);
# `compare OUTDIR` tabulates OUTDIR/runs/* with `hrm compare --mean-over seed` (mean ± std over the
# seeds) into OUTDIR/compare/ (compare.csv, curves.png) and OUTDIR/compare.json. PARALLEL=N runs N trainings at a time
# (with N > 1 one CPU thread each: hrm's default, the cores idle at start-up, would give two runs
# started together both cores, and their threads would stall each other);
# TRAIN_ARGS="key=value ..." is added to every training (e.g. max_steps=20 for a quick try).
if command -v hrm >/dev/null 2>&1; then
    hrm=(hrm)
else  # a source checkout without `pip install -e .`
    export PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}"
    hrm=(python -m hrm)
fi

train() {
    local run=$1 rung=$2 data=$3
    shift 3
    if [ -f "$run.json" ]; then  # finished before: its final metrics are there
        return
    fi
    while [ "$(jobs -rp | wc -l)" -ge "${PARALLEL:-1}" ]; do
        wait -n
    done
    mkdir -p "$(dirname "$run")"
    local threads=()
    if [ "${PARALLEL:-1}" -gt 1 ]; then
        threads=(--threads 1)
    fi
    (
        "${hrm[@]}" train --data "$data" --out "$run" --config "$here/ladder_$rung.yaml" --device cpu \
            ${threads[@]+"${threads[@]}"} --force --quiet --json "$@" ${TRAIN_ARGS:-} > "$run.json.tmp"
        mv "$run.json.tmp" "$run.json"
        echo "$(basename "$run"): $(cat "$run.json")"
    ) &
}

compare() {
    wait
    local out=$1
    "${hrm[@]}" compare "$out"/runs/*/ --mean-over seed --out "$out/compare" --force --json > "$out/compare.json"
    "${hrm[@]}" compare "$out"/runs/*/ --mean-over seed
}
