#!/usr/bin/env bash
# ghostnet-d — the `make demo` job: a 2-rank training run of a tiny GhostNet-D on the built-in
# synthetic dataset, reported to a coordinator, ending with the coordinator's Best values line.
#
#   deploy/demo.sh [CONFIG [TRAIN_OPTION ...]]   (default conf/demo.yml; run from the repository root)
#
# TRAIN_OPTIONs go to every rank's `train`, e.g. --set fully_train.trainer.precision=bf16 --set general.seed=8
# (deploy/bf16_demo_compare.sh runs the demo this way); they must not contain spaces.
#
# Steps: generate the dataset (once) → start the coordinator in the background (TensorBoard files in
# demo-run/tensorboard) → print how to follow the job (dashboard, `ghostnet-d follow`) → run
# deploy/run_distributed.sh with the 1 server × 2 ranks table → check the coordinator log has the
# job's progress and state lines → print the last Best values line.
# Follow the run live with:  tail -f demo-run/coordinator.log
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
CONFIG=${1:-conf/demo.yml}
TRAIN_OPTIONS=("${@:2}")
BIN=${GHOSTNET_BIN:-.build/release/ghostnet-d}
RUN_DIR=demo-run
PORT=${GHOSTNET_DEMO_PORT:-8470}
# The job name the configuration reports under (runtime.job_name).
JOB=$(sed -n 's/^ *job_name: *\([A-Za-z0-9._-]*\).*/\1/p' "$CONFIG" | head -n 1)
JOB=${JOB:-ghostnet-d}
mkdir -p "$RUN_DIR"

if [[ ! -d "$RUN_DIR/data/train" ]]; then
    echo "demo: generating the synthetic dataset in $RUN_DIR/data"
    "$BIN" dataset synth --out "$RUN_DIR/data" --classes 10 --train-per-class 300 --val-per-class 30 --seed 7 \
        --fixed-size 64x64
fi

# A fresh job each time: the coordinator keeps its records across demo runs in its own database,
# so clear the job's checkpoints and start the coordinator on a clean data directory.
rm -rf "$RUN_DIR/checkpoints" "$RUN_DIR/coordinator" "$RUN_DIR/logs" "$RUN_DIR/tensorboard"
: >"$RUN_DIR/coordinator.log"
"$BIN" coordinator --listen "127.0.0.1:$PORT" --data-dir "$RUN_DIR/coordinator" \
    --log "$RUN_DIR/coordinator.log" --objective accuracy_top1:max --tensorboard-dir "$RUN_DIR/tensorboard" \
    >"$RUN_DIR/coordinator.out" 2>&1 &
COORDINATOR=$!
trap 'kill -TERM $COORDINATOR 2>/dev/null; wait $COORDINATOR 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    kill -0 $COORDINATOR 2>/dev/null || { cat "$RUN_DIR/coordinator.out" >&2; exit 1; }
    sleep 0.1
done
echo "demo: coordinator on 127.0.0.1:$PORT (log $RUN_DIR/coordinator.log)"
echo "demo: dashboard    http://127.0.0.1:$PORT/"
echo "demo: follow with  $BIN follow $JOB --coordinator http://127.0.0.1:$PORT"
echo "demo: TensorBoard  tensorboard --logdir $RUN_DIR/tensorboard"

if [[ ${#TRAIN_OPTIONS[@]} -gt 0 ]]; then
    config_path=$CONFIG
    [[ "$CONFIG" = /* ]] || config_path=$PWD/$CONFIG
    export GHOSTNET_COMMAND="train --config $config_path ${TRAIN_OPTIONS[*]}"
fi
GHOSTNET_BIN="$BIN" GHOSTNET_COORDINATOR="http://127.0.0.1:$PORT" \
    bash deploy/run_distributed.sh rank_tables/rank_table_1x2.json "$CONFIG"

echo
# The operator's view in the log: the job's progress lines, its state changes, its Best values.
progress_lines=$(grep -c " INFO job $JOB running: epoch " "$RUN_DIR/coordinator.log" || true)
finished_lines=$(grep -c " INFO job $JOB finished: " "$RUN_DIR/coordinator.log" || true)
best_lines=$(grep -c " INFO Best values: " "$RUN_DIR/coordinator.log" || true)
echo "demo: coordinator log: $progress_lines progress lines, $finished_lines finished, $best_lines Best values lines"
if [[ $progress_lines -eq 0 || $finished_lines -eq 0 || $best_lines -eq 0 ]]; then
    echo "demo: the coordinator log lacks progress, state or Best values lines" >&2
    exit 1
fi
grep "Best values" "$RUN_DIR/coordinator.log" | tail -n 1
