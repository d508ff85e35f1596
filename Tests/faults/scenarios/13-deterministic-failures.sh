#!/usr/bin/env bash
# Scenario 13 — deterministic failures are not restarted.
#
# a. Bad YAML (a misspelt key) given to `ghostnet-d launch`, and through deploy/run_distributed.sh.
# b. A full disk: the checkpoint folder is a tmpfs with room for one checkpoint, so the epoch-2
#    save fails on rank 0 (the worker exits 73, "checkpoint").
# Proves: (a) the launch refuses before starting mpirun, exit 64, naming the file and the key
# path; (b) the launch starts once, does not restart, ends with the worker's status 73 and its
# message ("No space left on device"), and leaves no process.
# timeout: 120
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
fault_init
needs_train

synth_dataset "$WORK/data"
train_config "$WORK/good.yml" "$WORK/data" "$WORK/run" 3
sed 's/momentum: 0.9/momentm: 0.9/' "$WORK/good.yml" >"$WORK/bad.yml"

# a. Bad YAML.
status=0
"$GHOSTNET_BIN" launch --rank-table "$ROOT/rank_tables/rank_table_1x2.json" --config "$WORK/bad.yml" \
    >"$WORK/bad.out" 2>&1 || status=$?
expect test "$status" -eq 64 -- "launch with bad YAML exited $status, expected 64"
grep -qF "$WORK/bad.yml" "$WORK/bad.out" && grep -qF "fully_train.trainer.optimizer.params.momentm: unknown key" "$WORK/bad.out" \
    || { cat "$WORK/bad.out"; fail "the error does not name the file and the key"; }
grep -q "launch: start" "$WORK/bad.out" && fail "the launch started the job despite the bad YAML"
status=0
GHOSTNET_COMMAND="train --config $WORK/bad.yml" bash "$ROOT/deploy/run_distributed.sh" \
    "$ROOT/rank_tables/rank_table_1x2.json" >"$WORK/bad-script.out" 2>&1 || status=$?
expect test "$status" -eq 64 -- "run_distributed.sh with bad YAML exited $status, expected 64"
grep -q "launch: start" "$WORK/bad-script.out" && fail "run_distributed.sh started the job despite the bad YAML"
BAD_YAML=$(grep -m 1 -o "fully_train.trainer.optimizer.params.momentm: unknown key" "$WORK/bad.out")

# b. A full disk.
mkdir -p "$WORK/probe"
if ! mount -t tmpfs -o size=64k tmpfs "$WORK/probe" 2>/dev/null; then
    result "bad YAML refused (exit 64): $BAD_YAML; full disk SKIPPED (cannot mount a tmpfs here)"
    exit 0
fi
umount "$WORK/probe"
train_2ranks "$WORK/good.yml" --epochs 1 --checkpoint-dir "$WORK/size/checkpoints" >"$WORK/size.out" 2>&1 \
    || { tail -n 20 "$WORK/size.out"; fail "the sizing run failed"; }
ONE=$(newest_checkpoint "$WORK/size/checkpoints")
BYTES=$(($(stat -c %s "$ONE") + $(stat -c %s "${ONE%.safetensors}.optimizer.safetensors") + 65536))
mkdir -p "$WORK/run/checkpoints"
mount -t tmpfs -o "size=$BYTES" tmpfs "$WORK/run/checkpoints"
track_mount "$WORK/run/checkpoints"

start=$(now)
status=0
"$GHOSTNET_BIN" launch --rank-table "$ROOT/rank_tables/rank_table_1x2.json" --config "$WORK/good.yml" --backoff 1s \
    >"$WORK/full.out" 2>&1 || status=$?
took=$(seconds_since "$start")
[[ $status -eq 73 ]] || { tail -n 30 "$WORK/full.out"; fail "launch on a full disk exited $status, expected 73"; }
sleep 0.5
expect test -z "$(ghostnet_processes train)" -- "train processes survived: $(ghostnet_processes train)"
LAUNCH_LOG=$WORK/run/logs/launch.log
expect test "$(grep -c "launch: start [0-9]*:" "$LAUNCH_LOG")" -eq 1 -- "the full disk was restarted"
NOT_RESTARTED=$(grep -o "not restarting: .*" "$LAUNCH_LOG") || { cat "$LAUNCH_LOG"; fail "no 'not restarting' line"; }
grep -q "exited 73 (checkpoint)" <<<"$NOT_RESTARTED" && grep -q "No space left on device" <<<"$NOT_RESTARTED" \
    || fail "the ending does not carry the status and the worker's message: $NOT_RESTARTED"

result "bad YAML refused before mpirun (exit 64): $BAD_YAML; full disk: one start, exit 73 after $took s: $NOT_RESTARTED"
