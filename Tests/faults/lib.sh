# ghostnet-d — shared helpers of the fault scenarios (sourced by Tests/faults/scenarios/*.sh).
#
# A scenario sources this file, calls `fault_init`, does its work in "$WORK", registers every
# background process with `track_pid` (and every mount with `track_mount`), checks with `expect`,
# and ends with `result "key numbers"`. On any exit — pass, failure or a signal from the runner's
# timeout — `fault_cleanup` stops the tracked processes by id, unmounts, and removes "$WORK".
# Everything runs on 127.0.0.1 only.

set -euo pipefail

FAULTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=${GHOSTNET_ROOT:-$(cd "$FAULTS_DIR/../.." && pwd)}
GHOSTNET_BIN=${GHOSTNET_BIN:-$ROOT/.build/release/ghostnet-d}
export GHOSTNET_BIN

# mpirun options for local ranks over loopback (as deploy/run_distributed.sh uses for one server).
MPIRUN_LOCAL=(--oversubscribe --bind-to none --mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo)
if [[ $(id -u) -eq 0 ]]; then MPIRUN_LOCAL+=(--allow-run-as-root); fi

fault_init() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/ghostnet-fault.XXXXXX")
    : >"$WORK/.pids"
    : >"$WORK/.mounts"
    trap fault_cleanup EXIT
    trap 'echo "FAIL: ${BASH_SOURCE[0]##*/} line $LINENO: \`$BASH_COMMAND\` failed"' ERR
    trap 'exit 143' TERM INT
    [[ -x "$GHOSTNET_BIN" ]] || fail "ghostnet-d not built at $GHOSTNET_BIN (make build)"
}

fault_cleanup() {
    local status=$?
    local pid
    while read -r pid; do
        [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null || true
    done <"$WORK/.pids"
    for _ in $(seq 20); do
        local alive=0
        while read -r pid; do
            [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && alive=1
        done <"$WORK/.pids"
        [[ $alive -eq 0 ]] && break
        sleep 0.1
    done
    while read -r pid; do
        [[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null || true
    done <"$WORK/.pids"
    local mountpoint
    while read -r mountpoint; do
        [[ -n "$mountpoint" ]] && { chattr -R -i "$mountpoint" 2>/dev/null; umount -l "$mountpoint" 2>/dev/null; } || true
    done <"$WORK/.mounts"
    chattr -R -i "$WORK" 2>/dev/null || true
    rm -rf "$WORK"
    exit "$status"
}

track_pid() { echo "$1" >>"$WORK/.pids"; }
track_mount() { echo "$1" >>"$WORK/.mounts"; }

fail() {
    echo "FAIL: $*"
    exit 1
}

# expect CONDITION-COMMAND... -- MESSAGE: runs the command; on failure ends the scenario with MESSAGE.
expect() {
    local message=${*: -1}
    local command=("${@:1:$#-2}")
    "${command[@]}" || fail "$message"
}

note() { echo "  $*"; }
result() { echo "RESULT: $*"; }

now() { date +%s.%N; }
seconds_since() { awk -v start="$1" -v end="$(now)" 'BEGIN { printf "%.1f", end - start }'; }

# The resident set size of PID in KiB, from /proc/PID/status.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# wait_for SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds; false after SECONDS.
wait_for() {
    local limit=$1
    shift
    local deadline
    deadline=$(awk -v start="$(now)" -v limit="$limit" 'BEGIN { printf "%.3f", start + limit }')
    until "$@"; do
        if awk -v now="$(now)" -v deadline="$deadline" 'BEGIN { exit !(now > deadline) }'; then return 1; fi
        sleep 0.1
    done
}

# start_coordinator NAME DATA_DIR [PORT] [extra options...]: starts a coordinator in the
# background on 127.0.0.1 (port 0 = any free port) logging to $WORK/NAME.log, and sets
# COORD_PID, COORD_PORT, COORD_URL once it listens.
start_coordinator() {
    local name=$1 data=$2 port=${3:-0}
    shift $(($# < 3 ? $# : 3))
    "$GHOSTNET_BIN" coordinator --listen "127.0.0.1:$port" --data-dir "$data" --log "$WORK/$name.log" "$@" \
        >>"$WORK/$name.out" 2>&1 &
    COORD_PID=$!
    track_pid "$COORD_PID"
    local pattern="coordinator listening on 127.0.0.1:"
    if ! wait_for 30 grep -q "$pattern" "$WORK/$name.out"; then
        cat "$WORK/$name.out"
        fail "coordinator $name did not start listening within 30 s"
    fi
    COORD_PORT=$(grep -o "$pattern[0-9]*" "$WORK/$name.out" | tail -n 1 | sed 's/.*://')
    COORD_URL="http://127.0.0.1:$COORD_PORT"
}

# records_json URL JOB: the job's records as a JSON array (empty when the job is unknown).
records_json() {
    curl -sS --max-time 10 "$1/v1/jobs/$2/records" | jq -c '.records // []'
}

# best_lines LOG: the Best values messages of a coordinator log, timestamps removed.
best_lines() { grep -o 'Best values: .*' "$1" || true; }

# ghostnet_processes SUBCOMMAND: ids of running `ghostnet-d SUBCOMMAND` processes of this binary.
ghostnet_processes() { pgrep -f -- "^$GHOSTNET_BIN $1 " || true; }

# synth_dataset DIR: a small synthetic dataset (4 classes × 96 train / 8 val JPEGs of 64×64).
synth_dataset() {
    "$GHOSTNET_BIN" dataset synth --out "$1" --classes 4 --train-per-class 96 --val-per-class 8 --seed 11 >/dev/null
}

# needs_train: ends the scenario when this build has no `ghostnet-d train`.
needs_train() {
    "$GHOSTNET_BIN" train --help >/dev/null 2>&1 || fail "this build has no \`ghostnet-d train\` (the trainer branch is not merged)"
}

# train_config FILE DATA RUN EPOCHS: a training configuration for the fault scenarios: the demo's
# tiny GhostNet-D (blocks [2, 2, 2, 2]), 4 classes, batch 8 per rank (24 steps per epoch on 2
# ranks), checkpoints in RUN/checkpoints (keep 3), logs in RUN/logs, progress every step, a 20 s
# collective timeout, job name fault-<basename of RUN>.
train_config() {
    local file=$1 data=$2 run=$3 epochs=$4
    cat >"$file" <<YAML
general:
    backend: cpu
    parallel_fully_train: True
    seed: 7
pipeline: [fully_train]
fully_train:
    pipe_step:
        type: TrainPipeStep
    model:
        model_desc:
            type: ghostnet_d.ghostnet50
            width: 16
            num_classes: 4
            image_size: 32
            blocks: [2, 2, 2, 2]
    trainer:
        type: Trainer
        epochs: $epochs
        mixup: False
        optimizer:
            type: SGD
            params:
                lr: 0.05
                momentum: 0.9
                weight_decay: 0.0005
        lr_scheduler:
            type: CosineAnnealingLR
            by_epoch: False
            params:
                T_max: $epochs
        loss:
            type: CrossEntropyLoss
            params:
                sparse: True
    dataset:
        type: Imagenet
        common:
            data_path: $data
            batch_size: 8
            n_class: 4
            workers: 1
        val:
            batch_size: 16
runtime:
    checkpoint_dir: $run/checkpoints
    keep_checkpoints: 3
    log_dir: $run/logs
    job_name: fault-$(basename "$run")
    report_interval: 1
    eval_interval: 1
    collective_timeout: 20
    threads: 1
YAML
}

# train_2ranks CONFIG [options...]: `ghostnet-d train` on 2 local ranks with the 1 server × 2 table.
train_2ranks() {
    local config=$1
    shift
    mpirun -np 2 "${MPIRUN_LOCAL[@]}" "$GHOSTNET_BIN" train --config "$config" \
        --rank-table "$ROOT/rank_tables/rank_table_1x2.json" "$@"
}

# tensor_digest FILE: the SHA-256 of a safetensors file's tensor data (everything after its
# 8-byte header length and JSON header), so files whose metadata differs can still be compared
# bit for bit.
tensor_digest() {
    local header
    header=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
    tail -c +$((9 + header)) "$1" | sha256sum | cut -d ' ' -f 1
}

# newest_checkpoint DIR: the newest model file of a checkpoint folder (highest global step).
newest_checkpoint() {
    find "$1" -maxdepth 1 -name 'ckpt-e*-s*.safetensors' ! -name '*.optimizer.safetensors' | sort | tail -n 1
}

# supervised_rank_pid LAUNCH_PID RANK: the process id of a rank started by `ghostnet-d launch`
# (launch → mpirun → ranks), found by its OMPI_COMM_WORLD_RANK.
supervised_rank_pid() {
    local mpirun pid
    for mpirun in $(pgrep -P "$1"); do
        for pid in $(pgrep -P "$mpirun"); do
            if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then
                echo "$pid"
                return 0
            fi
        done
    done
    return 1
}

# epoch2_under_way: the run in $WORK/run has written its epoch-1 checkpoint and rank 0 has logged a
# step of epoch 2 (of $EPOCHS): the moment the kill scenarios strike.
epoch2_under_way() {
    [[ -n "$(find "$WORK/run/checkpoints" -name 'ckpt-e0001-*.optimizer.safetensors' 2>/dev/null)" ]] \
        && grep -q "epoch 2/$EPOCHS step [1-9]" "$WORK/run/logs/train-rank0.log"
}
