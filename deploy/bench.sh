#!/usr/bin/env bash
# ghostnet-d — the `make bench` job: the standard benchmark set, written to docs/PERFORMANCE.md.
#
#   deploy/bench.sh            (run from anywhere; needs the release build)
#
# Runs, for the OpenBLAS kernel the environment sets (OPENBLAS_CORETYPE, when set) and for the one
# the program selects itself (the variable unset): `bench train` and `bench infer` of ghostnet101 at
# batch 16, 224×224, 2 threads, and a quick ghostnet50 run at batch 8, 128×128; then `bench data`
# on a generated photo-sized (500×375) synthetic set, `bench allreduce` under `mpirun -np 2` (shared
# memory) and a 2-rank `bench train` (ghostnet50, batch 8, 128×128) whose last line is the exchange overhead;
# then the micro-batch table of the seed config (ghostnet101, 224×224, batch 128): the unaccumulated
# step, micro-batches 4, 8, 16 and 32, the planner's choice (`config check conf/ghostnet_d.yml`), and
# micro-batches 8 and 16 two at a time (`--lanes 2`, runtime.concurrent_micro_batches: 2),
# each with images/s and predicted and measured peak RSS. `deploy/bench.sh micro` runs only that
# table (GHOSTNET_BENCH_MICRO_STEPS timed steps, default 2).
# Every step benchmark measures its own sgemm peak in the same run, so the table's ratios are
# comparable even on a loaded machine. Environment: GHOSTNET_BIN, GHOSTNET_BENCH_DIR (scratch,
# default bench-run), GHOSTNET_BENCH_STEPS (timed steps, default 5), GHOSTNET_BENCH_OUT (default
# docs/PERFORMANCE.md).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=${GHOSTNET_BIN:-.build/release/ghostnet-d}
WORK=${GHOSTNET_BENCH_DIR:-bench-run}
STEPS=${GHOSTNET_BENCH_STEPS:-5}
MICRO_STEPS=${GHOSTNET_BENCH_MICRO_STEPS:-2}
OUT=${GHOSTNET_BENCH_OUT:-docs/PERFORMANCE.md}
mkdir -p "$WORK"
RESULTS="$WORK/steps.jsonl"
: >"$RESULTS"

# Kernel modes: "env" keeps the environment's OPENBLAS_CORETYPE; "auto" unsets it so the program
# picks the kernels for this CPU itself.
modes=(auto)
if [[ -n "${OPENBLAS_CORETYPE:-}" ]]; then modes=(env auto); fi

step_bench() { # MODE SUBCOMMAND ARGS...
    local mode=$1; shift
    local output
    if [[ $mode == env ]]; then
        output=$("$BIN" bench "$@" --threads 2 --steps "$STEPS" --warmup 1 --json)
    else
        output=$(env -u OPENBLAS_CORETYPE "$BIN" bench "$@" --threads 2 --steps "$STEPS" --warmup 1 --json)
    fi
    echo "$output" | sed '$d'
    echo "$output" | tail -n 1 | python3 -c 'import json,sys; r=json.load(sys.stdin); r["kernel_mode"]=sys.argv[1]; print(json.dumps(r))' "$mode" >>"$RESULTS"
}

# The seed config's batch of 128 at 224² as one pass and as micro-batches; OPENBLAS_CORETYPE unset.
micro_table() {
    local micro="$WORK/micro.jsonl" planned
    : >"$micro"
    planned=$("$BIN" config check conf/ghostnet_d.yml --skip-environment | sed -n 's/^# memory plan.*micro-batch \([0-9]*\) .*/\1/p')
    echo "== micro-batches of ghostnet101, batch 128, 224×224 (planner: $planned)"
    for m in none 4 8 16 32 "planner:$planned" lanes:8 lanes:16; do
        local args=() label=$m
        case $m in
            none) label="none (one pass)" ;;
            lanes:*) args=(--micro-batch "${m#lanes:}" --lanes 2); label="${m#lanes:}, two at a time" ;;
            planner:*) [[ " 4 8 16 32 " == *" ${m#planner:} "* ]] && continue
                       args=(--micro-batch "${m#planner:}"); label="${m#planner:} (planner)" ;;
            *) args=(--micro-batch "$m"); [[ $m == "$planned" ]] && label="$m (planner)" ;;
        esac
        local output
        output=$(env -u OPENBLAS_CORETYPE "$BIN" bench train --arch ghostnet101 --batch 128 --image-size 224 \
            "${args[@]}" --threads 2 --steps "$MICRO_STEPS" --warmup 1 --json)
        echo "$output" | sed '$d' | grep -E '^(step|peak|memory model)'
        echo "$output" | tail -n 1 | python3 -c 'import json,sys; r=json.load(sys.stdin); r["label"]=sys.argv[1]; print(json.dumps(r))' "$label" >>"$micro"
    done
    python3 deploy/bench_table.py micro "$micro" "$OUT" >"$WORK/PERFORMANCE.md.new"
    mv "$WORK/PERFORMANCE.md.new" "$OUT"
}

if [[ ${1:-} == micro ]]; then
    micro_table
    echo "bench: wrote $OUT"
    exit 0
fi

for mode in "${modes[@]}"; do
    echo "== kernels: $mode"
    step_bench "$mode" train --arch ghostnet101 --batch 16 --image-size 224
    step_bench "$mode" infer --arch ghostnet101 --batch 16 --image-size 224
    step_bench "$mode" train --arch ghostnet50 --batch 8 --image-size 128
    step_bench "$mode" infer --arch ghostnet50 --batch 8 --image-size 128
done

# bf16 rows (issue 17): on a CPU with AVX512-BF16, the % of the in-run bf16 GEMM peak, images/s and the ratio
# to an fp32 run of the same steps; elsewhere the emulated path's numerics only. Text in $WORK/bf16.txt.
echo "== bf16 (ghostnet101, batch 16, 224×224)"
for kind in train infer; do
    env -u OPENBLAS_CORETYPE "$BIN" bench "$kind" --arch ghostnet101 --batch 16 --image-size 224 --precision bf16 \
        --threads 2 --steps "$STEPS" --warmup 1 | grep -E '^bf16' | sed "s/^/$kind: /"
done | tee "$WORK/bf16.txt"

echo "== bench data"
if [[ ! -d "$WORK/photos/train" ]]; then
    "$BIN" dataset synth --out "$WORK/photos" --classes 4 --train-per-class 60 --val-per-class 2 \
        --fixed-size 500x375 --seed 5 >/dev/null
fi
"$BIN" bench data --data "$WORK/photos" --threads 2 --batches 8 --batch-size 16 | tee "$WORK/data.txt"

echo "== bench allreduce (mpirun -np 2)"
mpi_flags=(-np 2 --oversubscribe --bind-to none --mca btl self,vader,tcp --mca btl_tcp_if_include lo
           --mca oob_tcp_if_include lo)
if [[ $(id -u) -eq 0 ]]; then mpi_flags+=(--allow-run-as-root); fi
mpirun "${mpi_flags[@]}" "$BIN" bench allreduce --iterations 5 | tee "$WORK/allreduce.txt"

echo "== bench train with the gradient exchange (mpirun -np 2, 1 thread each)"
mpirun "${mpi_flags[@]}" "$BIN" bench train --arch ghostnet50 --batch 8 --image-size 128 --threads 1 --steps 2 --warmup 1 \
    | tee "$WORK/exchange_step.txt"

python3 deploy/bench_table.py "$RESULTS" "$WORK/data.txt" "$WORK/allreduce.txt" "$WORK/exchange_step.txt" "$OUT" \
    >"$WORK/PERFORMANCE.md.new"
mv "$WORK/PERFORMANCE.md.new" "$OUT"
micro_table
echo "bench: wrote $OUT"
