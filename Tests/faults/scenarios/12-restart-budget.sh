#!/usr/bin/env bash
# Scenario 12 — a rank dies at every start; the supervisor gives up after --max-restarts.
#
# `ghostnet-d launch --max-restarts 2 --backoff 0.5s` runs a 2-rank job while a watcher SIGKILLs
# rank 1 about a second after each start (as an out-of-memory kill at start-up would).
# Proves: the launch starts exactly 1 + 2 times, waits 0.5 s then 1 s (doubling backoff), ends
# with exit status 76 ("gave up") and a summary naming every cause ("3 × rank 1 on '127.0.0.1'
# killed by signal 9 (SIGKILL)"), reports "failed" to the coordinator, and leaves no process.
# timeout: 120
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
fault_init
needs_train

synth_dataset "$WORK/data"
start_coordinator coordinator "$WORK/coordinator-data"
export GHOSTNET_COORDINATOR=$COORD_URL
# Each start resumes from the last epoch's checkpoint, so the job must outlast three kill windows: with
# 3 epochs (0.4 s each) a late kill once let the third start finish the job; 60 take half a minute.
train_config "$WORK/run.yml" "$WORK/data" "$WORK/run" 60

start=$(now)
"$GHOSTNET_BIN" launch --rank-table "$ROOT/rank_tables/rank_table_1x2.json" --config "$WORK/run.yml" \
    --max-restarts 2 --backoff 0.5s >"$WORK/run.out" 2>&1 &
LAUNCH_PID=$!
track_pid "$LAUNCH_PID"

# The watcher: every rank 1 that appears is killed after 1 s.
(
    killed=""
    while kill -0 "$LAUNCH_PID" 2>/dev/null; do
        pid=$(supervised_rank_pid "$LAUNCH_PID" 1 || true)
        if [[ -n "$pid" && " $killed " != *" $pid "* ]]; then
            sleep 1
            kill -KILL "$pid" 2>/dev/null && echo "killed $pid" >>"$WORK/watcher.log"
            killed="$killed $pid"
        fi
        sleep 0.1
    done
) &
track_pid $!

status=0
wait "$LAUNCH_PID" || status=$?
took=$(seconds_since "$start")
[[ $status -eq 76 ]] || { tail -n 30 "$WORK/run.out"; fail "ghostnet-d launch exited $status, expected 76 (gave up)"; }
sleep 0.5
expect test -z "$(ghostnet_processes train)" -- "train processes survived: $(ghostnet_processes train)"

LAUNCH_LOG=$WORK/run/logs/launch.log
STARTS=$(grep -c "launch: start [0-9]*:" "$LAUNCH_LOG")
KILLS=$(wc -l <"$WORK/watcher.log")
expect test "$STARTS" -eq 3 -- "$STARTS starts, expected 1 + --max-restarts 2 = 3"
expect test "$KILLS" -eq 3 -- "the watcher killed $KILLS ranks, expected 3"
grep -q "launch: restart 1/2 in 0.5 s" "$LAUNCH_LOG" && grep -q "launch: restart 2/2 in 1.0 s" "$LAUNCH_LOG" \
    || { cat "$LAUNCH_LOG"; fail "the backoff did not double (0.5 s, then 1 s)"; }
GAVE_UP=$(grep -o "gave up: .*" "$LAUNCH_LOG") || { cat "$LAUNCH_LOG"; fail "no 'gave up' line"; }
grep -qF "causes: 3 × rank 1 on '127.0.0.1' killed by signal 9 (SIGKILL)" <<<"$GAVE_UP" \
    || fail "the summary does not count the 3 kills: $GAVE_UP"
sleep 1
grep -q "job fault-run failed: gave up after 2 restart(s)" "$WORK/coordinator.log" \
    || { grep "job fault-run" "$WORK/coordinator.log"; fail "the coordinator did not get 'failed'"; }

result "3 starts, rank 1 killed at each; exit 76 after $took s; $GAVE_UP"
