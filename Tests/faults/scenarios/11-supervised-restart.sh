#!/usr/bin/env bash
# Scenario 11 — a rank is SIGKILLed mid-epoch under `ghostnet-d launch`; the supervisor restarts.
#
# A coordinator runs throughout. A 3-epoch run on the 1 server × 2 ranks table is started with
# `ghostnet-d launch --backoff 1s`; once the epoch-1 checkpoint exists and epoch 2 is under way,
# rank 1 gets SIGKILL. A control run of the same configuration, never interrupted, gives the
# reference weights.
# Proves: with no person involved the supervisor classifies the end (rank 1 killed by signal 9),
# restarts once with --resume from the epoch-1 checkpoint (logged with its global step), reports
# starting/restarting/finished to the coordinator, exits 0, leaves no train process, and the final
# model and optimizer tensors are bit-identical to the uninterrupted run's.
# timeout: 120
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
fault_init
needs_train

EPOCHS=3
synth_dataset "$WORK/data"
start_coordinator coordinator "$WORK/coordinator-data"
export GHOSTNET_COORDINATOR=$COORD_URL

train_config "$WORK/control.yml" "$WORK/data" "$WORK/control" "$EPOCHS"
train_2ranks "$WORK/control.yml" >"$WORK/control.out" 2>&1 || { tail -n 30 "$WORK/control.out"; fail "the control run failed"; }
CONTROL_FINAL=$(newest_checkpoint "$WORK/control/checkpoints")

train_config "$WORK/run.yml" "$WORK/data" "$WORK/run" "$EPOCHS"
start=$(now)
"$GHOSTNET_BIN" launch --rank-table "$ROOT/rank_tables/rank_table_1x2.json" --config "$WORK/run.yml" --backoff 1s \
    >"$WORK/run.out" 2>&1 &
LAUNCH_PID=$!
track_pid "$LAUNCH_PID"

expect wait_for 60 epoch2_under_way -- "epoch 2 did not start within 60 s (see run.out)"
RANK1=$(supervised_rank_pid "$LAUNCH_PID" 1) || fail "rank 1 not found among the launch's descendants"
KILLED_STEP=$(grep -o "epoch 2/$EPOCHS step [0-9]*/[0-9]*" "$WORK/run/logs/train-rank0.log" | tail -n 1)
kill -KILL "$RANK1"
note "SIGKILL to rank 1 (pid $RANK1) at $KILLED_STEP"
status=0
wait "$LAUNCH_PID" || status=$?
took=$(seconds_since "$start")
[[ $status -eq 0 ]] || { tail -n 30 "$WORK/run.out"; fail "ghostnet-d launch exited $status, expected 0 (finished)"; }
sleep 0.5
expect test -z "$(ghostnet_processes train)" -- "train processes survived: $(ghostnet_processes train)"

LAUNCH_LOG=$WORK/run/logs/launch.log
grep -q "launch: start 1 ended after .* s: rank 1 on '127.0.0.1' killed by signal 9 (SIGKILL)" "$LAUNCH_LOG" \
    || { cat "$LAUNCH_LOG"; fail "the launch log does not classify the end of start 1 as rank 1 killed"; }
grep -q "launch: restart 1/3 in 1.0 s" "$LAUNCH_LOG" || { cat "$LAUNCH_LOG"; fail "no 'restart 1/3' line"; }
RESUMED=$(grep -o "start 2: 2 rank(s) on 1 server(s) (127.0.0.1), resuming from global step [0-9]* .*" "$LAUNCH_LOG") \
    || { cat "$LAUNCH_LOG"; fail "start 2 is not logged as resuming"; }
grep -q "in ckpt-e0001-" <<<"$RESUMED" || fail "start 2 did not resume from the epoch-1 checkpoint: $RESUMED"
expect test "$(grep -c "launch: start [0-9]*:" "$LAUNCH_LOG")" -eq 2 -- "not exactly 2 starts"
grep -q "resume: reading $WORK/run/checkpoints/ckpt-e0001-" "$WORK/run.out" || fail "the trainer did not read the epoch-1 checkpoint"

FINAL=$(newest_checkpoint "$WORK/run/checkpoints")
expect test "$(basename "$FINAL")" = "$(basename "$CONTROL_FINAL")" -- "final checkpoints differ in name: $FINAL vs $CONTROL_FINAL"
expect test "$(tensor_digest "$FINAL")" = "$(tensor_digest "$CONTROL_FINAL")" -- "final model tensors differ from the uninterrupted run"
expect test "$(tensor_digest "${FINAL%.safetensors}.optimizer.safetensors")" = \
    "$(tensor_digest "${CONTROL_FINAL%.safetensors}.optimizer.safetensors")" -- "final optimizer state differs"

# The job states reached the coordinator (it logs one line per change).
sleep 1
STATES=$(grep -o "job fault-run [a-z]*:" "$WORK/coordinator.log" | awk '{ print $3 }' | tr -d ':' | tr '\n' ' ')
note "job states at the coordinator: $STATES"
for state in starting restarting finished; do
    grep -qw "$state" <<<"$STATES" || fail "the coordinator did not get the state '$state' (got: $STATES)"
done

result "rank 1 killed at $KILLED_STEP; launch restarted once ($(sed 's/.*resuming from //' <<<"$RESUMED")), exit 0 after $took s; final $(basename "$FINAL") bit-identical to the uninterrupted run; states: $STATES"
