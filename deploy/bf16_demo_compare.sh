#!/usr/bin/env bash
# Issue 17's accuracy check of bf16 training on `make demo`: runs deploy/demo.sh (2 ranks, the built-in
# synthetic dataset, conf/demo.yml's epochs) once per seed and variant, then prints each run's final and best
# validation top-1 and their differences from the fp32 run of the same seed, and across seeds their means.
#
#   deploy/bf16_demo_compare.sh [--seeds 7,8,9] [--variants fp32,bf16,bf16-grad,fp32-grad] [--config FILE]
#
# Variants: fp32 and bf16 set fully_train.trainer.precision (bf16: the AVX512-BF16 kernel where the CPU has
# it, the emulated path elsewhere); fp32-grad and bf16-grad add runtime.gradient_dtype=bf16 (the compressed
# all-reduce). The seed is general.seed (default 7, conf/demo.yml's); the dataset stays demo.sh's.
# Defaults: --seeds 7 --variants fp32,bf16 --config conf/demo.yml; the binary is $GHOSTNET_BIN, else the
# release build. The runs are sequential, each uses the machine's cores for ~2-6 minutes on 2 cores (the
# emulated bf16 path is the slowest). Every run's rank-0 log is kept as demo-run/bf16-compare/SEED-VARIANT.log
# (demo.sh's output in .out) and its row appended to demo-run/bf16-compare/results.tsv; demo-run/checkpoints
# holds the last run's. Exits 1 when a run fails or its log does not show the precision asked for.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
SEEDS=7
VARIANTS=fp32,bf16
CONFIG=conf/demo.yml
while [[ $# -gt 0 ]]; do
    case $1 in
        --seeds) SEEDS=${2:?--seeds needs a comma-separated list, e.g. 7,8,9}; shift 2 ;;
        --variants) VARIANTS=${2:?--variants needs a comma-separated list, e.g. fp32,bf16}; shift 2 ;;
        --config) CONFIG=${2:?--config needs a file}; shift 2 ;;
        -h | --help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bf16_demo_compare: unknown option $1 (see --help)" >&2; exit 1 ;;
    esac
done
IFS=, read -r -a seeds <<<"$SEEDS"
IFS=, read -r -a variants <<<"$VARIANTS"

# The `train` options of a variant.
variant_options() {
    case $1 in
        fp32) echo "--set fully_train.trainer.precision=fp32 --set runtime.gradient_dtype=fp32" ;;
        bf16) echo "--set fully_train.trainer.precision=bf16 --set runtime.gradient_dtype=fp32" ;;
        fp32-grad) echo "--set fully_train.trainer.precision=fp32 --set runtime.gradient_dtype=bf16" ;;
        bf16-grad) echo "--set fully_train.trainer.precision=bf16 --set runtime.gradient_dtype=bf16" ;;
        *) echo "bf16_demo_compare: --variants: unknown variant '$1' (fp32, bf16, fp32-grad, bf16-grad)" >&2
            return 1 ;;
    esac
}

# "final best best_epoch final_loss" from a rank-0 log's `validation after epoch N: top-1 X ...` lines, top-1 in
# percent to 4 decimals (the table's differences are taken before rounding to its 2).
validation_summary() {
    awk '/ validation after epoch [0-9]+: top-1 / {
            epoch = $7; sub(":", "", epoch); top1 = $9 * 100; loss = $13
            if (top1 > best) { best = top1; at = epoch }
            final = top1; last_loss = loss; n++
        }
        END { if (n == 0) exit 1; printf "%.4f %.4f %d %s\n", final, best, at, last_loss }' "$1"
}

for variant in "${variants[@]}"; do variant_options "$variant" >/dev/null; done
OUT=demo-run/bf16-compare
mkdir -p "$OUT"
[[ -f "$OUT/results.tsv" ]] ||
    printf 'date\tseed\tvariant\tfinal_top1\tbest_top1\tbest_epoch\tfinal_val_loss\tseconds\n' >"$OUT/results.tsv"
declare -A final best
for seed in "${seeds[@]}"; do
    for variant in "${variants[@]}"; do
        name=$seed-$variant
        echo "bf16_demo_compare: seed $seed, $variant: deploy/demo.sh (output in $OUT/$name.out)"
        started=$(date +%s)
        # shellcheck disable=SC2046 # variant_options is a word list on purpose.
        if ! bash deploy/demo.sh "$CONFIG" --set "general.seed=$seed" $(variant_options "$variant") \
            >"$OUT/$name.out" 2>&1; then
            tail -n 20 "$OUT/$name.out" >&2
            echo "bf16_demo_compare: seed $seed, $variant: deploy/demo.sh failed (see $OUT/$name.out)" >&2
            exit 1
        fi
        seconds=$(($(date +%s) - started))
        cp demo-run/logs/train-rank0.log "$OUT/$name.log"
        precision=${variant%-grad}
        if ! grep -q " INFO precision: $precision[ (]" "$OUT/$name.log"; then
            echo "bf16_demo_compare: $OUT/$name.log does not show 'precision: $precision'" >&2
            exit 1
        fi
        read -r run_final run_best run_epoch run_loss < <(validation_summary "$OUT/$name.log") || {
            echo "bf16_demo_compare: $OUT/$name.log has no validation lines" >&2
            exit 1
        }
        final[$name]=$run_final
        best[$name]=$run_best
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$seed" "$variant" "$run_final" "$run_best" \
            "$run_epoch" "$run_loss" "$seconds" >>"$OUT/results.tsv"
        summary=$(printf 'final top-1 %.2f %%, best %.2f %% (epoch %s)' "$run_final" "$run_best" "$run_epoch")
        echo "bf16_demo_compare: seed $seed, $variant: $summary, final val loss $run_loss, ${seconds} s"
    done
done

# The table: Δ = variant − fp32 of the same seed, in points (1 point = 3 of conf/demo.yml's 300 images).
echo
printf '%-6s %-10s %8s %8s %8s %8s\n' seed variant final% best% Δfinal Δbest
for seed in "${seeds[@]}"; do
    for variant in "${variants[@]}"; do
        name=$seed-$variant
        if [[ -n "${final[$seed-fp32]:-}" && $variant != fp32 ]]; then
            read -r delta_final delta_best < <(awk -v a="${final[$name]}" -v b="${final[$seed-fp32]}" \
                -v c="${best[$name]}" -v d="${best[$seed-fp32]}" 'BEGIN { printf "%+.2f %+.2f\n", a - b, c - d }')
        else
            delta_final=-; delta_best=-
        fi
        printf '%-6s %-10s %8.2f %8.2f %8s %8s\n' "$seed" "$variant" "${final[$name]}" "${best[$name]}" \
            "$delta_final" "$delta_best"
    done
done
if [[ ${#seeds[@]} -gt 1 ]]; then
    for variant in "${variants[@]}"; do
        for seed in "${seeds[@]}"; do
            echo "$seed ${final[$seed-$variant]} ${best[$seed-$variant]} ${final[$seed-fp32]:-} ${best[$seed-fp32]:-}"
        done | awk -v variant="$variant" '{
                f += $2; b += $3; n++
                if ($4 != "") { df += $2 - $4; db += $3 - $5; m++ }
            }
            END {
                printf "mean   %-10s %8.2f %8.2f", variant, f / n, b / n
                if (m > 0 && variant != "fp32") printf " %+8.2f %+8.2f", df / m, db / m
                printf "  (%d seeds)\n", n
            }'
    done
fi
