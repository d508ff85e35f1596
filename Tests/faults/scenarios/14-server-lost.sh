#!/usr/bin/env bash
# Scenario 14 — a server disappears in the 2-server network-namespace test; the job shrinks.
#
# Two network namespaces joined by a veth pair stand for two servers (10.77.0.1, 10.77.0.2), set up
# by deploy/netns_lib.sh as for deploy/test_netns_multinode.sh; mpirun runs in the first and reaches
# the second through an `ip netns exec` agent. A 3-epoch job with runtime.reproducible_reduction on the 2 × 1 table runs
# under `ghostnet-d launch`; once epoch 2 is under way every process of the second namespace is
# killed and the namespace deleted, so the server neither runs ranks nor answers. A control run of
# the same configuration on both servers, never interrupted, gives the reference weights.
# Proves: the supervisor classifies the end, probes both servers, drops 10.77.0.2 ("did not answer
# the probe"), rewrites the table without it (version kept, 1 rank), relaunches on 10.77.0.1 alone
# with --resume and `runtime.virtual_ranks=2` (so the global batch stays 2 × 8), finishes (exit 0),
# and the final tensors equal the uninterrupted 2-server run's (fixed-point reduction makes the sum
# independent of the number of ranks).
# Needs root (CAP_NET_ADMIN); otherwise it says so and passes (skipped).
# timeout: 120
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
fault_init
needs_train

source "$ROOT/deploy/netns_lib.sh"
trap 'netns_remove; fault_cleanup' EXIT
netns_create l "$WORK"
if [[ -z "$NETNS_A" ]]; then
    result "SKIPPED: cannot create network namespaces here (needs root / CAP_NET_ADMIN)"
    exit 0
fi
"$GHOSTNET_BIN" ranktable generate --servers 10.77.0.1,10.77.0.2 --ranks-per-server 1 --out "$WORK/table.json"

EPOCHS=3
synth_dataset "$WORK/data"
# reproducible_config FILE RUN: the scenarios' configuration with exact (fixed-point) gradient sums.
reproducible_config() {
    train_config "$1" "$WORK/data" "$2" "$EPOCHS"
    sed -i 's/^runtime:$/runtime:\n    reproducible_reduction: true/' "$1"
}
reproducible_config "$WORK/control.yml" "$WORK/control"
"$GHOSTNET_BIN" launch --rank-table "$WORK/table.json" --config "$WORK/control.yml" --max-restarts 0 \
    >"$WORK/control.out" 2>&1 || { tail -n 30 "$WORK/control.out"; fail "the 2-server control run failed"; }
CONTROL_FINAL=$(newest_checkpoint "$WORK/control/checkpoints")

reproducible_config "$WORK/run.yml" "$WORK/run"
start=$(now)
"$GHOSTNET_BIN" launch --rank-table "$WORK/table.json" --config "$WORK/run.yml" --backoff 1s --probe-timeout 10s \
    >"$WORK/run.out" 2>&1 &
LAUNCH_PID=$!
track_pid "$LAUNCH_PID"
expect wait_for 60 epoch2_under_way -- "epoch 2 did not start within 60 s (see run.out)"
LOST_AT=$(grep -o "epoch 2/$EPOCHS step [0-9]*/[0-9]*" "$WORK/run/logs/train-rank0.log" | tail -n 1)
netns_take_down "$NETNS_B"
lost=$(now)
note "server 10.77.0.2 taken down at $LOST_AT"
status=0
wait "$LAUNCH_PID" || status=$?
took=$(seconds_since "$lost")
[[ $status -eq 0 ]] || { tail -n 40 "$WORK/run.out"; fail "ghostnet-d launch exited $status, expected 0"; }

LAUNCH_LOG=$WORK/run/logs/launch.log
note "mpirun's report: $(grep -i -m 4 -e 'daemon' -e 'on node' -e 'exited on signal' "$WORK/run.out" | tr '\n' '|')"
ENDED=$(grep -o "start 1 ended after .*" "$LAUNCH_LOG") || { cat "$LAUNCH_LOG"; fail "start 1's end is not logged"; }
DROPPED=$(grep -o "dropped server '10.77.0.2': .*" "$LAUNCH_LOG") || { cat "$LAUNCH_LOG"; fail "10.77.0.2 was not dropped"; }
grep -q "did not answer the probe" <<<"$DROPPED" || fail "the drop does not say why: $DROPPED"
SECOND=$(grep -o "start 2: 1 rank(s) on 1 server(s) (10.77.0.1), resuming from .*" "$LAUNCH_LOG") \
    || { cat "$LAUNCH_LOG"; fail "start 2 did not run on 10.77.0.1 alone, resuming"; }
SHRUNK=$WORK/run/logs/launch/rank_table.start2.json
"$GHOSTNET_BIN" ranktable check "$SHRUNK" >"$WORK/shrunk.txt" || fail "the rewritten table does not load"
grep -q "rank table version 1.0: 1 server(s), 1 rank(s)" "$WORK/shrunk.txt" || { cat "$WORK/shrunk.txt"; fail "the rewritten table is not 1.0 with 1 rank"; }
BATCHES=$(grep -o "effective global batch [0-9]*" "$WORK/run/logs/train-rank0.log" | awk '{ print $4 }' | sort -u | tr '\n' ' ')
expect test "$BATCHES" = "16 " -- "the global batch changed: rank 0 logged '$BATCHES', expected 16 (2 virtual shards × 8)"

FINAL=$(newest_checkpoint "$WORK/run/checkpoints")
expect test "$(basename "$FINAL")" = "$(basename "$CONTROL_FINAL")" -- "final checkpoints differ in name: $FINAL vs $CONTROL_FINAL (the epoch length changed)"
IDENTICAL=no
[[ "$(tensor_digest "$FINAL")" == "$(tensor_digest "$CONTROL_FINAL")" ]] && IDENTICAL=yes
expect test "$IDENTICAL" = yes -- "final model tensors differ from the uninterrupted 2-server run"

result "server lost at $LOST_AT; $ENDED; $DROPPED; $SECOND; finished $took s after the loss; final $(basename "$FINAL") bit-identical to the uninterrupted 2-server run: $IDENTICAL"
