#!/usr/bin/env bash
# Scenario 15 — preemption: SIGTERM or SIGUSR1 reaches a 2-rank job; it checkpoints and ends "preempted".
#
# A coordinator runs throughout. A control run (2 epochs of 16 steps, 2 ranks) gives the reference
# weights. Run A: SIGTERM to rank 1 early in epoch 1; once rank 1 has raised its flag, SIGUSR1 and
# SIGTERM to rank 0 (the checkpoint's writer) every 20 ms until it exits. Run B: SIGUSR1 to mpirun,
# which forwards it to every rank at once. Run C (30 epochs): SIGTERM to mpirun with `--mca
# odls_base_sigkill_timeout 3`: OpenMPI 4.1 waits that long, sends the ranks SIGTERM, and SIGKILLs
# them after as long again. Each rank runs under a wrapper that records its own exit status.
# Proves: both ranks of every run exit 75 (WorkerExitStatus.preempted), mpirun exits 75 for A and B
# (for C, mpirun exits 1 and may SIGKILL a rank inside MPI_Finalize while it tears the job down; a
# rank that exits exits 75, and both log the stop), the checkpoint is of the step the
# ranks agreed on (mid-epoch for A and B), no temporary file is left despite the signals during the write, the
# train log and the coordinator's job state say preempted; runs A and B resumed with --resume read
# that checkpoint and end with model and optimizer tensors bit-identical to the control's.
# timeout: 170
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
fault_init
needs_train

EPOCHS=2
"$GHOSTNET_BIN" dataset synth --out "$WORK/data" --classes 4 --train-per-class 64 --val-per-class 4 --seed 11 >/dev/null
start_coordinator coordinator "$WORK/coordinator-data"
export GHOSTNET_COORDINATOR=$COORD_URL

# Each rank under a wrapper that writes its exit status to RUN/status.<rank>; the wrapper traps
# the signals (trapped, not ignored, so ghostnet-d starts with the default actions) and outlives the rank.
cat >"$WORK/rank.sh" <<'SH'
#!/usr/bin/env bash
trap 'true' TERM USR1
"$@" &
child=$!
# wait returns early when a trapped signal arrives; the rank is done once it no longer exists.
while true; do
    wait "$child"
    status=$?
    kill -0 "$child" 2>/dev/null || break
done
echo "$status" >"$RUN_DIR/status.$OMPI_COMM_WORLD_RANK"
exit "$status"
SH
chmod +x "$WORK/rank.sh"

# run_job NAME EPOCHS [mpirun options...]: starts NAME's 2-rank run in the background; sets JOB_PID.
run_job() {
    local name=$1 epochs=$2
    shift 2
    train_config "$WORK/$name.yml" "$WORK/data" "$WORK/$name" "$epochs"
    mkdir -p "$WORK/$name"
    RUN_DIR="$WORK/$name" mpirun -np 2 "${MPIRUN_LOCAL[@]}" -x RUN_DIR "$@" "$WORK/rank.sh" "$GHOSTNET_BIN" train \
        --config "$WORK/$name.yml" --rank-table "$ROOT/rank_tables/rank_table_1x2.json" >"$WORK/$name.out" 2>&1 &
    JOB_PID=$!
    track_pid "$JOB_PID"
}

# rank_pid RANK: the ghostnet-d process of RANK (the child of its wrapper).
rank_pid() {
    local wrapper
    for wrapper in $(pgrep -P "$JOB_PID"); do
        if tr '\0' '\n' <"/proc/$wrapper/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1"; then
            pgrep -P "$wrapper" -f "$GHOSTNET_BIN train" && return 0
        fi
    done
    return 1
}

under_way() { grep -q "epoch 1/[0-9]* step [2-9]" "$WORK/$1/logs/train-rank0.log" 2>/dev/null; }

# check_preempted NAME MPIRUN_STATUS [killing]: both ranks exited 75 (with "killing", mpirun was
# tearing the job down itself and may SIGKILL a rank in MPI_Finalize, or its wrapper before or while
# it writes the status: a rank that exited must have exited 75, and both must have logged the stop),
# mpirun as expected, a step-exact checkpoint (mid-epoch unless killing) and no temporary file, the
# log and the coordinator say preempted. Sets CHECKPOINT, STEP.
check_preempted() {
    local name=$1 expected=$2 killing=${3:-} status=0 rank code
    wait "$JOB_PID" || status=$?
    expect test "$status" -eq "$expected" -- "$name: mpirun exited $status, expected $expected (see $name.out)"
    RANK_CODES=""
    for rank in 0 1; do
        code=$(cat "$WORK/$name/status.$rank" 2>/dev/null || true)
        code=${code:-killed}
        RANK_CODES+="${RANK_CODES:+, }$code"
        grep -q "preempted: " "$WORK/$name/logs/train-rank$rank.log" || fail "$name: rank $rank did not log the stop"
        [[ "$code" == 75 || ( -n "$killing" && "$code" == killed ) ]] || fail "$name: rank $rank exited $code, not 75"
    done
    local message
    message=$(grep -o 'preempted: .*' "$WORK/$name/logs/train-rank0.log" | head -n 1)
    [[ -n "$message" ]] || fail "$name: the train log does not say preempted"
    STEP=$(sed -n 's/.*holds global step \([0-9]*\) .*/\1/p' <<<"$message")
    CHECKPOINT=$(sed -n 's/.*checkpoint \([^ ]*\.safetensors\) holds.*/\1/p' <<<"$message")
    expect test -f "$CHECKPOINT" -- "$name: the preemption checkpoint is missing ($message)"
    expect test "$(newest_checkpoint "$WORK/$name/checkpoints")" = "$CHECKPOINT" -- \
        "$name: $CHECKPOINT is not the newest checkpoint"
    # A and B signal early in epoch 1, so their stop is mid-epoch; when mpirun signals the ranks itself
    # (after its grace period) the stop may fall on any step, an epoch's last one included.
    if [[ -z "$killing" ]]; then
        expect test $((STEP % 16)) -ne 0 -- "$name: global step $STEP is an epoch's end, not mid-epoch"
    fi
    expect test -z "$(find "$WORK/$name/checkpoints" -name '*.tmp')" -- "$name: a temporary file was left behind"
    local state
    state=$(curl -sS --max-time 5 "$COORD_URL/v1/jobs/fault-$name" | jq -r '.state')
    expect test "$state" = preempted -- "$name: the coordinator's job state is $state, expected preempted"
    note "$name: mpirun $status, ranks $RANK_CODES, checkpoint at global step $STEP; $message"
}

# check_resumed NAME: --resume reads the preemption checkpoint and ends identical to the control.
check_resumed() {
    local name=$1
    train_2ranks "$WORK/$name.yml" --resume >"$WORK/$name-resume.out" 2>&1 \
        || { tail -n 30 "$WORK/$name-resume.out"; fail "$name: the resumed run failed"; }
    grep -q "resume: reading $CHECKPOINT" "$WORK/$name-resume.out" \
        || { grep resume "$WORK/$name-resume.out"; fail "$name: the resumed run did not start at global step $STEP"; }
    grep -q "every rank continues with its own batch-norm running statistics" "$WORK/$name-resume.out" \
        || fail "$name: the ranks' own running statistics were not restored"
    local final checksum
    checksum=$(grep -o 'parameter checksum [0-9a-f]*' "$WORK/$name-resume.out" || true)
    expect test "$checksum" = "$CONTROL_CHECKSUM" -- "$name: final $checksum, uninterrupted $CONTROL_CHECKSUM"
    final=$(newest_checkpoint "$WORK/$name/checkpoints")
    expect test "$(basename "$final")" = "$(basename "$CONTROL_FINAL")" -- "$name: final checkpoint $final"
    expect test "$(tensor_digest "$final")" = "$(tensor_digest "$CONTROL_FINAL")" -- \
        "$name: final model tensors differ from the uninterrupted run"
    expect test "$(tensor_digest "${final%.safetensors}.optimizer.safetensors")" = \
        "$(tensor_digest "${CONTROL_FINAL%.safetensors}.optimizer.safetensors")" -- \
        "$name: final optimizer state differs from the uninterrupted run"
}

started=$(now)
run_job control "$EPOCHS"
wait "$JOB_PID" || { tail -n 30 "$WORK/control.out"; fail "the control run failed"; }
CONTROL_FINAL=$(newest_checkpoint "$WORK/control/checkpoints")
CONTROL_CHECKSUM=$(grep -o 'parameter checksum [0-9a-f]*' "$WORK/control.out")
note "control run: $(seconds_since "$started") s, final $(basename "$CONTROL_FINAL"), $CONTROL_CHECKSUM"

# A: SIGTERM to rank 1; once rank 1 has raised its flag at the step boundary, signals to rank 0
# all through the stop (gather, checkpoint write, finalize).
run_job a "$EPOCHS"
expect wait_for 60 under_way a -- "run a did not reach step 2 within 60 s"
RANK0=$(rank_pid 0) || fail "rank 0 of run a not found"
RANK1=$(rank_pid 1) || fail "rank 1 of run a not found"
kill -TERM "$RANK1"
for _ in $(seq 2000); do
    grep -q "rank 1: SIGTERM received" "$WORK/a/logs/train-rank1.log" 2>/dev/null && break
    sleep 0.005
done
signals=0
while kill -0 "$RANK0" 2>/dev/null; do
    if ((signals % 2)); then kill -USR1 "$RANK0" 2>/dev/null || true; else kill -TERM "$RANK0" 2>/dev/null || true; fi
    signals=$((signals + 1))
    sleep 0.02
done
check_preempted a 75
grep -q "preempted: rank 1 received" "$WORK/a/logs/train-rank0.log" || fail "a: the stop is not attributed to rank 1"
STEP_A=$STEP
check_resumed a

# B: SIGUSR1 to mpirun, forwarded to both ranks.
run_job b "$EPOCHS"
expect wait_for 60 under_way b -- "run b did not reach step 2 within 60 s"
kill -USR1 "$JOB_PID"
check_preempted b 75
check_resumed b

# C: SIGTERM to mpirun, with a grace period long enough for a step and the checkpoint; mpirun
# waits that long before it signals the ranks, so this run is longer (not compared with the control).
run_job c 30 --mca odls_base_sigkill_timeout 3
expect wait_for 60 under_way c -- "run c did not reach step 2 within 60 s"
term_at=$(now)
kill -TERM "$JOB_PID"
check_preempted c 1 killing
note "c: mpirun ended $(seconds_since "$term_at") s after its SIGTERM"
C_CODES=$RANK_CODES

result "SIGTERM to rank 1 (+$signals signals to rank 0 while it stopped): checkpoint at step $STEP_A, ranks and" \
    "mpirun exit 75; SIGUSR1 to mpirun: 75; SIGTERM to mpirun (sigkill_timeout 3): ranks $C_CODES, mpirun 1;" \
    "coordinator state preempted; resumed runs a and b bit-identical to the uninterrupted run"
