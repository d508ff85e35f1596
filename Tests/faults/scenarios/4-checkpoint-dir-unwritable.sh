#!/usr/bin/env bash
# Scenario 4 — the checkpoint folder becomes full, or read-only, during a save.
#
# The documented policy (`ghostnet-d train --help`, Trainer): if a checkpoint cannot be written,
# the run stops on every rank with an error naming the file, and the previous checkpoints stay
# intact for --resume. Two 2-rank runs of 3 epochs put their checkpoints on a tmpfs this scenario
# mounts (chmod does not stop root):
#   full      — a tmpfs with room for one checkpoint (model + optimizer) and a little more, so the
#               epoch-2 save runs out of space;
#   read-only — the tmpfs is remounted read-only as soon as the epoch-1 checkpoint is complete.
# A 1-epoch control run gives the expected epoch-1 checkpoint.
# Proves: each run stops (mpirun non-zero, no train process left) within the collective timeout
# of the failed save, the error names the checkpoint and the cause (no space / read-only file
# system) and says the previous one is intact; the epoch-1 checkpoint left in the folder is
# bit-identical to the control's; and a --resume from a writable copy of that folder finishes.
# Skipped (with a message, counted as passed) where tmpfs cannot be mounted (no privilege).
# timeout: 400
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
fault_init
needs_train

mkdir -p "$WORK/probe"
if ! mount -t tmpfs -o size=64k tmpfs "$WORK/probe" 2>/dev/null; then
    result "SKIPPED: cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN)"
    exit 0
fi
umount "$WORK/probe"

synth_dataset "$WORK/data"
train_config "$WORK/control.yml" "$WORK/data" "$WORK/control" 3
train_2ranks "$WORK/control.yml" --epochs 1 >"$WORK/control.out" 2>&1 || { tail -n 20 "$WORK/control.out"; fail "the control run failed"; }
CONTROL=$(newest_checkpoint "$WORK/control/checkpoints")
MODEL_BYTES=$(stat -c %s "$CONTROL")
OPTIMIZER_BYTES=$(stat -c %s "${CONTROL%.safetensors}.optimizer.safetensors")

# mount_checkpoints CASE BYTES: a tmpfs of BYTES at $WORK/CASE/checkpoints.
mount_checkpoints() {
    mkdir -p "$WORK/$1/checkpoints"
    mount -t tmpfs -o "size=$2" tmpfs "$WORK/$1/checkpoints"
    track_mount "$WORK/$1/checkpoints"
}

summary=()
# check_stopped CASE STATUS CAUSE: the run must have failed with CAUSE, leaving epoch 1 intact.
check_stopped() {
    local case=$1 status=$2 cause=$3 checkpoints=$WORK/$1/checkpoints
    expect test "$status" -ne 0 -- "$case: the run exited 0"
    sleep 1
    expect test -z "$(ghostnet_processes train)" -- "$case: train processes left: $(ghostnet_processes train)"
    local error
    error=$(grep -m 1 "cannot write checkpoint ckpt-e0002-" "$WORK/$case.out") || { tail -n 20 "$WORK/$case.out"; fail "$case: no error naming the epoch-2 checkpoint"; }
    grep -qF "$cause" <<<"$error" || fail "$case: the error does not say '$cause': $error"
    grep -qF "the previous checkpoint $checkpoints/$(basename "$CONTROL") is intact" <<<"$error" \
        || fail "$case: the error does not name the intact previous checkpoint: $error"
    expect test "$(newest_checkpoint "$checkpoints")" = "$checkpoints/$(basename "$CONTROL")" -- "$case: the newest checkpoint is not epoch 1's"
    expect test "$(tensor_digest "$checkpoints/$(basename "$CONTROL")")" = "$(tensor_digest "$CONTROL")" -- "$case: the epoch-1 checkpoint changed"
    local leftovers
    leftovers=$(find "$checkpoints" -type f ! -name 'ckpt-e0001-*' -printf '%f ')
    note "$case: ${error#*Error: }"
    [[ -z "$leftovers" ]] || note "$case: files left besides the epoch-1 checkpoint: $leftovers"

    # The intact checkpoint resumes (from a writable copy).
    cp -r "$checkpoints" "$WORK/$case/resumed"
    train_2ranks "$WORK/$case.yml" --resume --checkpoint-dir "$WORK/$case/resumed" >"$WORK/$case-resume.out" 2>&1 \
        || { tail -n 20 "$WORK/$case-resume.out"; fail "$case: resuming from the intact checkpoint failed"; }
    grep -q "resume: reading $WORK/$case/resumed/ckpt-e0001-" "$WORK/$case-resume.out" || fail "$case: the resume did not start from epoch 1"
    summary+=("$case: stopped (exit $status), '$cause' named, epoch-1 checkpoint intact and resumable${leftovers:+, left: $leftovers}")
}

# Full: room for one checkpoint plus 64 KiB (tmpfs rounds up to pages).
train_config "$WORK/full.yml" "$WORK/data" "$WORK/full" 3
mount_checkpoints full $((MODEL_BYTES + OPTIMIZER_BYTES + 65536))
status=0
train_2ranks "$WORK/full.yml" >"$WORK/full.out" 2>&1 || status=$?
check_stopped full "$status" "No space left on device"

# Read-only: remounted once the epoch-1 checkpoint is complete.
train_config "$WORK/read-only.yml" "$WORK/data" "$WORK/read-only" 3
mount_checkpoints read-only 64m
train_2ranks "$WORK/read-only.yml" >"$WORK/read-only.out" 2>&1 &
RUN_PID=$!
track_pid "$RUN_PID"
# The model file is renamed into place last (after the optimizer file), so it marks a complete checkpoint.
epoch1_saved() {
    [[ -n "$(find "$WORK/read-only/checkpoints" -name 'ckpt-e0001-*.safetensors' ! -name '*.optimizer.safetensors')" ]]
}
expect wait_for 240 epoch1_saved -- "read-only: no epoch-1 checkpoint within 240 s"
mount -o remount,ro "$WORK/read-only/checkpoints" || fail "read-only: cannot remount the tmpfs read-only"
remounted_at=$(now)
status=0
wait "$RUN_PID" || status=$?
note "read-only: the run ended $(seconds_since "$remounted_at") s after the remount"
check_stopped read-only "$status" "Read-only file system"

result "${summary[*]}"
