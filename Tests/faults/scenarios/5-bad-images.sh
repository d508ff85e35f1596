#!/usr/bin/env bash
# Scenario 5 — data faults in a class folder on a real run.
#
# Into train/<first class>/ of a synthetic dataset go: a truncated JPEG (first half of a real one),
# a zero-byte file, a PNG named .JPEG, a FIFO named .JPEG, a decompression bomb (a real progressive
# JPEG of a few KB whose header declares 29999×29999), a 1×1 JPEG and an Adobe CMYK JPEG
# (`dataset synth` makes the last two). A 2-epoch single-process run trains on it
# (runtime.strict_data false, the default).
# Proves: the run completes (the FIFO does not block a reader, the bomb costs no gigabytes); the
# log names each of the five bad files exactly once (not again in epoch 2) with the reason; the
# 1×1 and CMYK images are decoded and used, not reported; and the epoch summary reports the count
# of bad images (5).
# timeout: 300
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
fault_init
needs_train

synth_dataset "$WORK/data"
CLASS=$(find "$WORK/data/train" -mindepth 1 -maxdepth 1 -type d | sort | sed -n 1p)
SAMPLE=$(find "$CLASS" -name '*.JPEG' | sort | sed -n 1p)
head -c $(($(stat -c %s "$SAMPLE") / 2)) "$SAMPLE" >"$CLASS/bad_truncated.JPEG"
: >"$CLASS/bad_empty.JPEG"
# The bomb: the first progressive (SOF2) RGB file of the set with its declared size patched to 29999×29999.
PROGRESSIVE=$(LC_ALL=C grep -l -r -P --include='*.JPEG' '\xFF\xC2' "$WORK/data/train" | xargs grep -L Adobe | sed -n 1p || true)
[[ -n "$PROGRESSIVE" ]] || fail "the synthetic dataset holds no progressive JPEG to patch"
cp "$PROGRESSIVE" "$CLASS/bad_bomb.JPEG"
SOF=$(LC_ALL=C grep -obUaP '\xFF\xC2' "$CLASS/bad_bomb.JPEG" | sed -n 1p | cut -d: -f1)
printf '\x75\x2F\x75\x2F' | dd of="$CLASS/bad_bomb.JPEG" bs=1 seek=$((SOF + 5)) conv=notrunc status=none
mkfifo "$CLASS/bad_fifo.JPEG"
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
for bad in bad_truncated bad_empty bad_png bad_fifo bad_bomb; do
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
[[ -n "$SUMMARY" ]] || fail "no epoch summary line in $LOG reports the bad images (expected a count of 5)"
grep -qE "\b5\b" <<<"$SUMMARY" || fail "the epoch summary does not give the count 5: $SUMMARY"

result "run completed; each bad file named once (${named[*]}); 1×1 and CMYK used silently; summary: $SUMMARY"
