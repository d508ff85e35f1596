#!/usr/bin/env bash
# ghostnet-d — the `make bench` job: the standard benchmark set, written to docs/PERFORMANCE.md.
#
#   deploy/bench.sh            (run from anywhere; needs the release build)
#
# Runs, for the OpenBLAS kernel the environment sets (OPENBLAS_CORETYPE, when set) and for the one
# the program selects itself (the variable unset): `bench train` and `bench infer` of ghostnet101 at
# batch 16, 224×224, 2 threads, and a quick ghostnet50 run at batch 8, 128×128; then `bench data`
# on a generated photo-sized (500×375) synthetic set, `bench allreduce` under `mpirun -np 2` (shared
# memory) and a 2-rank `bench train` (ghostnet50, batch 8, 128×128) whose last line is the exchange overhead.
# Every step benchmark measures its own sgemm peak in the same run, so the table's ratios are
# comparable even on a loaded machine. Environment: GHOSTNET_BIN, GHOSTNET_BENCH_DIR (scratch,
# default bench-run), GHOSTNET_BENCH_STEPS (timed steps, default 5), GHOSTNET_BENCH_OUT (default
# docs/PERFORMANCE.md).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=${GHOSTNET_BIN:-.build/release/ghostnet-d}
WORK=${GHOSTNET_BENCH_DIR:-bench-run}
STEPS=${GHOSTNET_BENCH_STEPS:-5}
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

for mode in "${modes[@]}"; do
    echo "== kernels: $mode"
    step_bench "$mode" train --arch ghostnet101 --batch 16 --image-size 224
    step_bench "$mode" infer --arch ghostnet101 --batch 16 --image-size 224
    step_bench "$mode" train --arch ghostnet50 --batch 8 --image-size 128
    step_bench "$mode" infer --arch ghostnet50 --batch 8 --image-size 128
done

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
    >"$WORK/PERFORMANCE.md"
mv "$WORK/PERFORMANCE.md" "$OUT"
echo "bench: wrote $OUT"
