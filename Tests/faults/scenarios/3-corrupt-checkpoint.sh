#!/usr/bin/env bash
# Scenario 3 — the newest checkpoint is truncated, or has one flipped byte in its tensor data.
#
# A 3-epoch single-process run leaves checkpoints after epochs 1, 2 and 3. Two copies of its
# checkpoint folder are damaged: in one the newest model file is cut to half its size, in the other
# one byte in the middle of its tensor data is inverted (size unchanged). Each copy is resumed.
# Proves: resume detects the damage (size, CRC-32C), says which file and why, continues from the
# previous (epoch-2) checkpoint, and ends with weights bit-identical to the undamaged run's.
# timeout: 300
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
fault_init
needs_train

synth_dataset "$WORK/data"
train_config "$WORK/run.yml" "$WORK/data" "$WORK/run" 3
(cd "$WORK" && "$GHOSTNET_BIN" train --config "$WORK/run.yml") >"$WORK/run.out" 2>&1 || { tail -n 20 "$WORK/run.out"; fail "the training run failed"; }
REFERENCE=$(newest_checkpoint "$WORK/run/checkpoints")
NAME=$(basename "$REFERENCE")
REFERENCE_DIGEST=$(tensor_digest "$REFERENCE")
[[ "$NAME" == ckpt-e0003-* ]] || fail "unexpected newest checkpoint $NAME"

# resume_damaged CASE: resumes from $WORK/CASE/checkpoints (a damaged copy) and checks the outcome.
resume_damaged() {
    local case=$1 checkpoints=$WORK/$1/checkpoints
    (cd "$WORK" && "$GHOSTNET_BIN" train --config "$WORK/run.yml" --resume --checkpoint-dir "$checkpoints" \
        --set "runtime.log_dir=$WORK/$case/logs") >"$WORK/$case.out" 2>&1 || { tail -n 20 "$WORK/$case.out"; fail "$case: the resumed run failed"; }
    local warning
    warning=$(grep -m 1 -F "skipping checkpoint $checkpoints/$NAME: " "$WORK/$case.out") \
        || { grep -i -e resume -e skip "$WORK/$case.out"; fail "$case: no warning naming the damaged $NAME"; }
    grep -q "resume: reading $checkpoints/ckpt-e0002-" "$WORK/$case.out" \
        || { grep -i resume "$WORK/$case.out"; fail "$case: did not resume from the epoch-2 checkpoint"; }
    expect test "$(tensor_digest "$checkpoints/$NAME")" = "$REFERENCE_DIGEST" -- "$case: final weights differ from the undamaged run"
    note "$case: ${warning#*WARNING }"
    echo "${warning##*: }"
}

mkdir -p "$WORK/truncated" "$WORK/flipped"
cp -r "$WORK/run/checkpoints" "$WORK/truncated/"
cp -r "$WORK/run/checkpoints" "$WORK/flipped/"

SIZE=$(stat -c %s "$REFERENCE")
truncate -s $((SIZE / 2)) "$WORK/truncated/checkpoints/$NAME"
TRUNCATED_REASON=$(resume_damaged truncated | tail -n 1)

HEADER=$(od -An -t u8 -N 8 "$REFERENCE" | tr -d ' ')
OFFSET=$(((8 + HEADER + SIZE) / 2))
BYTE=$(od -An -t u1 -j "$OFFSET" -N 1 "$REFERENCE" | tr -d ' ')
printf "$(printf '\\%03o' $((BYTE ^ 255)))" | dd of="$WORK/flipped/checkpoints/$NAME" bs=1 seek="$OFFSET" conv=notrunc status=none
expect test "$(stat -c %s "$WORK/flipped/checkpoints/$NAME")" -eq "$SIZE" -- "flipping a byte changed the file size"
cmp -s "$REFERENCE" "$WORK/flipped/checkpoints/$NAME" && fail "the byte flip did not change the file"
FLIPPED_REASON=$(resume_damaged flipped | tail -n 1)

result "truncated $NAME ($SIZE → $((SIZE / 2)) bytes): '$TRUNCATED_REASON'; byte $OFFSET inverted: '$FLIPPED_REASON'; both resumed from epoch 2 and ended bit-identical to the undamaged run"
