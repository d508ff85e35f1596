#!/usr/bin/env bash
# Scenario 5 — data faults in a class folder on a real run.
#
# Into train/<first class>/ of a synthetic dataset go: a truncated JPEG (first half of a real one),
# a zero-byte file, a PNG named .JPEG, a 1×1 JPEG and an Adobe CMYK JPEG (`dataset synth` makes the
# last two). A
# 2-epoch single-process run trains on it (runtime.strict_data false, the default).
# Proves: the run completes; the log names each of the three bad files exactly once (not again in
# epoch 2) with the reason; the 1×1 and CMYK images are decoded and used, not reported; and the
# epoch summary reports the count of bad images (3).
# timeout: 300
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
fault_init
needs_train

synth_dataset "$WORK/data"
CLASS=$(find "$WORK/data/train" -mindepth 1 -maxdepth 1 -type d | sort | sed -n 1p)
SAMPLE=$(find "$CLASS" -name '*.JPEG' | sort | sed -n 1p)
head -c $(($(stat -c %s "$SAMPLE") / 2)) "$SAMPLE" >"$CLASS/bad_truncated.JPEG"
: >"$CLASS/bad_empty.JPEG"
# A real 1×1 RGBA PNG.
base64 -d >"$CLASS/bad_png.JPEG" <<<"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
# A 1×1 JPEG, and an Adobe CMYK JPEG (the synthetic set writes some; they carry an APP14 "Adobe" marker).
"$GHOSTNET_BIN" dataset synth --out "$WORK/tiny" --classes 1 --train-per-class 1 --val-per-class 0 --fixed-size 1x1 --seed 3 >/dev/null
cp "$(find "$WORK/tiny/train" -name '*.JPEG' | sed -n 1p)" "$CLASS/good_1x1.JPEG"
CMYK=$(grep -l -r --include='*.JPEG' Adobe "$WORK/data" | sed -n 1p || true)
[[ -n "$CMYK" ]] || fail "the synthetic dataset holds no Adobe CMYK JPEG to copy"
cp "$CMYK" "$CLASS/good_cmyk.JPEG"
magic() { od -An -t x1 -N 4 "$1" | tr -d ' '; }
expect test "$(magic "$CLASS/bad_png.JPEG")" = 89504e47 -- "the PNG file is not a PNG"
expect test "$(magic "$CLASS/good_1x1.JPEG" | cut -c 1-4)" = ffd8 -- "the 1×1 file is not a JPEG"

train_config "$WORK/run.yml" "$WORK/data" "$WORK/run" 2
(cd "$WORK" && "$GHOSTNET_BIN" train --config "$WORK/run.yml") >"$WORK/run.out" 2>&1 || { tail -n 20 "$WORK/run.out"; fail "the run did not complete"; }
LOG=$WORK/run/logs/train-rank0.log
cat "$WORK/run.out" "$LOG" >"$WORK/all.log"

named=()
for bad in bad_truncated bad_empty bad_png; do
    count=$(grep -c "$CLASS/$bad.JPEG" "$WORK/run.out" || true)
    expect test "$count" -eq 1 -- "$bad.JPEG is named $count time(s) in the run's output, expected once"
    named+=("$bad: $(grep -m 1 -o "$CLASS/$bad.JPEG: .*" "$WORK/run.out" | sed "s|$CLASS/||")")
done
for good in good_1x1 good_cmyk; do
    expect test "$(grep -c "$good.JPEG" "$WORK/all.log" || true)" -eq 0 -- "$good.JPEG was reported, but it is a valid image"
done
for line in "${named[@]}"; do note "$line"; done

# The epoch summary carries the count.
SUMMARY=$(grep -i -m 1 -E "epoch 1.*bad|bad.*epoch 1" "$LOG" || true)
[[ -n "$SUMMARY" ]] || fail "no epoch summary line in $LOG reports the bad images (expected a count of 3)"
grep -qE "\b3\b" <<<"$SUMMARY" || fail "the epoch summary does not give the count 3: $SUMMARY"

result "run completed; each bad file named once (${named[*]}); 1×1 and CMYK used silently; summary: $SUMMARY"
