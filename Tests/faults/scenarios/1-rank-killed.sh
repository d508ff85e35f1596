#!/usr/bin/env bash
# Scenario 1 — a rank is SIGKILLed mid-epoch in a 2-rank run; the job is resumed.
#
# A coordinator runs throughout. A 3-epoch 2-rank run (deploy/run_distributed.sh with the 1 server ×
# 2 ranks table, collective timeout 20 s) is started; once the epoch-1 checkpoint exists and epoch 2
# is under way, rank 1 gets SIGKILL. The job is then rerun with --resume. A control run of the same
# configuration, never interrupted, gives the reference weights.
# Proves: the job ends (mpirun exits non-zero) well within the collective timeout, no ghostnet-d
# train process survives, the coordinator (plus the worker's spool) holds every record made before
# the kill; the resumed run continues from the epoch-1 checkpoint and ends with model and optimizer
# tensors bit-identical to the uninterrupted run's, and the coordinator holds one record per epoch.
# timeout: 420
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
fault_init
needs_train

EPOCHS=3
COLLECTIVE_TIMEOUT=20
synth_dataset "$WORK/data"
start_coordinator coordinator "$WORK/coordinator-data"
export GHOSTNET_COORDINATOR=$COORD_URL

# The control: uninterrupted.
train_config "$WORK/control.yml" "$WORK/data" "$WORK/control" "$EPOCHS"
train_2ranks "$WORK/control.yml" >"$WORK/control.out" 2>&1 || { tail -n 30 "$WORK/control.out"; fail "the control run failed"; }
CONTROL_FINAL=$(newest_checkpoint "$WORK/control/checkpoints")
[[ -n "$CONTROL_FINAL" ]] || fail "the control run left no checkpoint"

# The faulted run.
train_config "$WORK/run.yml" "$WORK/data" "$WORK/run" "$EPOCHS"
# --max-restarts 0: the job must end, not be restarted by the supervisor (scenario 11 covers that).
GHOSTNET_COMMAND="train --config $WORK/run.yml" GHOSTNET_LAUNCH_ARGS="--max-restarts 0" bash "$ROOT/deploy/run_distributed.sh" \
    "$ROOT/rank_tables/rank_table_1x2.json" "$WORK/run.yml" >"$WORK/run.out" 2>&1 &
MPIRUN_PID=$!
track_pid "$MPIRUN_PID"

expect wait_for 240 epoch2_under_way -- "epoch 2 did not start within 240 s (see run.out)"
RANK1=$(supervised_rank_pid "$MPIRUN_PID" 1) || fail "rank 1 of the run not found among mpirun's children"
KILLED_STEP=$(grep -o "epoch 2/$EPOCHS step [0-9]*/[0-9]*" "$WORK/run/logs/train-rank0.log" | tail -n 1)
kill -KILL "$RANK1"
killed_at=$(now)
note "SIGKILL to rank 1 (pid $RANK1) at $KILLED_STEP"
status=0
wait "$MPIRUN_PID" || status=$?
abort_seconds=$(seconds_since "$killed_at")
note "mpirun exited $status after $abort_seconds s"
expect test "$status" -ne 0 -- "mpirun exited 0 after a rank was killed"
expect awk -v took="$abort_seconds" -v limit="$COLLECTIVE_TIMEOUT" 'BEGIN { exit !(took < limit) }' -- \
    "the job took $abort_seconds s to end, not within the $COLLECTIVE_TIMEOUT s collective timeout"
sleep 1
expect test -z "$(ghostnet_processes train)" -- "ghostnet-d train processes survived: $(ghostnet_processes train)"
[[ -z "$(find "$WORK/run/checkpoints" -name 'ckpt-e0002-*')" ]] || fail "an epoch-2 checkpoint exists: the kill was not mid-epoch"

# Every record made before the kill is at the coordinator or still in the worker's spool.
MADE=$(grep -c "validation after epoch" "$WORK/run/logs/train-rank0.log" || true)
STORED=$(records_json "$COORD_URL" fault-run | jq length)
SPOOL=$WORK/run/logs/coordinator-spool.jsonl
SPOOLED=0
[[ -f "$SPOOL" ]] && SPOOLED=$(wc -l <"$SPOOL")
note "before the resume: $MADE record(s) made, $STORED at the coordinator, $SPOOLED spooled"
expect test "$MADE" -ge 1 -- "no evaluation happened before the kill"
expect test $((STORED + SPOOLED)) -eq "$MADE" -- "$MADE records made but $STORED stored + $SPOOLED spooled"

# The resumed run.
train_2ranks "$WORK/run.yml" --resume >"$WORK/resume.out" 2>&1 || { tail -n 30 "$WORK/resume.out"; fail "the resumed run failed"; }
grep -q "resume: reading $WORK/run/checkpoints/ckpt-e0001-" "$WORK/resume.out" \
    || { grep resume "$WORK/resume.out"; fail "the resumed run did not continue from the epoch-1 checkpoint"; }
FINAL=$(newest_checkpoint "$WORK/run/checkpoints")
expect test "$(basename "$FINAL")" = "$(basename "$CONTROL_FINAL")" -- "final checkpoints differ in name: $FINAL vs $CONTROL_FINAL"
expect test "$(tensor_digest "$FINAL")" = "$(tensor_digest "$CONTROL_FINAL")" -- "final model tensors differ from the uninterrupted run"
expect test "$(tensor_digest "${FINAL%.safetensors}.optimizer.safetensors")" = \
    "$(tensor_digest "${CONTROL_FINAL%.safetensors}.optimizer.safetensors")" -- "final optimizer state differs from the uninterrupted run"

# The comparison can tell runs apart: the epoch-1 weights differ from the final ones.
expect test "$(tensor_digest "$(find "$WORK/run/checkpoints" -name 'ckpt-e0001-*' ! -name '*.optimizer.*')")" != \
    "$(tensor_digest "$FINAL")" -- "epoch-1 and final weights have the same digest"

EPOCHS_STORED=$(records_json "$COORD_URL" fault-run | jq -c '[.[].epoch]')
expect test "$EPOCHS_STORED" = "[1,2,3]" -- "coordinator records of the run are epochs $EPOCHS_STORED, expected [1,2,3]"

result "killed rank 1 at $KILLED_STEP; job ended (mpirun exit $status) $abort_seconds s after the kill (timeout $COLLECTIVE_TIMEOUT s); no process left; records $MADE made = $STORED stored + $SPOOLED spooled; resumed from epoch 1, final $(basename "$FINAL") bit-identical to the uninterrupted run; records epochs $EPOCHS_STORED"
