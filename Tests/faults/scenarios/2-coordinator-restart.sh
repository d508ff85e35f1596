#!/usr/bin/env bash
# Scenario 2 — the coordinator is killed (SIGKILL) and restarted mid-run.
#
# A worker stand-in (`ghostnet-d diagnose record-stream`, the same CoordinatorClient with spool and
# retries that rank 0 of train uses) reports 24 records, 0.4 s apart. After 8 are stored the
# coordinator is SIGKILLed, stays down 4 s while the worker keeps making records (they wait in its
# spool), then restarts on the same port and data directory. The same stream also goes to an
# undisturbed control coordinator.
# Proves: every record is stored exactly once, in order (GET /v1/jobs/JOB/records equals the
# control's); the restarted coordinator reloads and logs the Best values line of the records it had;
# a line is logged only when the best set changes, so the faulted run's lines, with the reload line
# merged into its equal neighbour, are exactly the control's: the Best values after the restart are
# those before plus the new records.
# timeout: 180
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
fault_init

JOB=fault-restart
RECORDS=24

# The control: the same records into a coordinator that is never disturbed.
start_coordinator control "$WORK/control-data"
"$GHOSTNET_BIN" diagnose record-stream --coordinator "$COORD_URL" --job "$JOB" --spool "$WORK/control.spool" \
    --records "$RECORDS" --interval 0 >"$WORK/control-stream.out" 2>&1 || { cat "$WORK/control-stream.out"; fail "control stream failed"; }
CONTROL_RECORDS=$(records_json "$COORD_URL" "$JOB")
kill -TERM "$COORD_PID"
wait "$COORD_PID" || true
mapfile -t CONTROL_LINES < <(best_lines "$WORK/control.log")
# One line per change of the best set: at least the first record's, at most one per record.
expect test "${#CONTROL_LINES[@]}" -ge 1 -a "${#CONTROL_LINES[@]}" -le "$RECORDS" -- \
    "control coordinator logged ${#CONTROL_LINES[@]} Best values lines for $RECORDS records"
expect test "$(printf '%s\n' "${CONTROL_LINES[@]}" | uniq | wc -l)" -eq "${#CONTROL_LINES[@]}" -- \
    "the control logged the same Best values line twice in a row (a line without a change)"

# The faulted run.
start_coordinator main "$WORK/data"
PORT=$COORD_PORT
FIRST_PID=$COORD_PID
"$GHOSTNET_BIN" diagnose record-stream --coordinator "$COORD_URL" --job "$JOB" --spool "$WORK/worker.spool" \
    --records "$RECORDS" --interval 0.4 --drain-timeout 60 >"$WORK/stream.out" 2>&1 &
STREAM_PID=$!
track_pid "$STREAM_PID"

stored_at_least() { [[ $(records_json "$COORD_URL" "$JOB" | jq length) -ge $1 ]]; }
expect wait_for 30 stored_at_least 8 -- "the coordinator did not store 8 records within 30 s"
kill -KILL "$FIRST_PID"
wait "$FIRST_PID" 2>/dev/null || true
killed_at=$(now)
LINES_BEFORE=$(best_lines "$WORK/main.log" | wc -l)
note "coordinator SIGKILLed after $LINES_BEFORE Best values lines"
sleep 4
expect kill -0 "$STREAM_PID" -- "the worker stopped while the coordinator was down: $(cat "$WORK/stream.out")"

: >"$WORK/main.out"
start_coordinator main "$WORK/data" "$PORT"
downtime=$(seconds_since "$killed_at")
RELOADED=$(sed -n "s/.*job $JOB: \([0-9]*\) records.*/\1/p" "$WORK/main.out" | tail -n 1)
expect test -n "$RELOADED" -- "the restarted coordinator did not log how many records it reloaded"
note "restarted after $downtime s with $RELOADED records"

if ! wait "$STREAM_PID"; then
    cat "$WORK/stream.out"
    fail "the worker did not deliver every record: $(tail -n 1 "$WORK/stream.out")"
fi
SPOOLED=$(sed -n 's/.* \([0-9]*\) round(s) with the coordinator unreachable/\1/p' "$WORK/stream.out")
expect test "${SPOOLED:-0}" -ge 1 -- "no record was made while the coordinator was down (the fault did not happen)"

# Nothing lost or doubled: the same records, in the same order, as the undisturbed run.
FINAL_RECORDS=$(records_json "$COORD_URL" "$JOB")
STORED=$(jq length <<<"$FINAL_RECORDS")
UNIQUE=$(jq '[.[] | [.worker_id, .epoch, .step]] | unique | length' <<<"$FINAL_RECORDS")
expect test "$STORED" -eq "$RECORDS" -- "$STORED records stored, $RECORDS made"
expect test "$UNIQUE" -eq "$RECORDS" -- "only $UNIQUE distinct records among $STORED"
expect test "$FINAL_RECORDS" = "$CONTROL_RECORDS" -- "stored records differ from the undisturbed run"

# Best values: the line logged on reload sits between the lines of the kill and the new records;
# with it merged into its equal neighbour, the faulted run logged exactly the control's lines.
mapfile -t AFTER < <(awk -v marker="job $JOB: $RELOADED records" \
    'index($0, marker) { found = 1; next } found && /Best values: / { sub(/.*Best values: /, "Best values: "); print }' "$WORK/main.log")
expect test "${#AFTER[@]}" -ge 1 -- "the restarted coordinator logged no Best values line on reload"
mapfile -t MERGED < <(best_lines "$WORK/main.log" | uniq)
expect test "${#MERGED[@]}" -eq "${#CONTROL_LINES[@]}" -- \
    "faulted run logged ${#MERGED[@]} distinct Best values lines in sequence, the control ${#CONTROL_LINES[@]}"
for ((index = 0; index < ${#MERGED[@]}; index++)); do
    expect test "${MERGED[index]}" = "${CONTROL_LINES[index]}" -- "Best values line $((index + 1)) differs from the undisturbed run"
done
note "final: ${AFTER[-1]}"
expect grep -q "Best values" <(curl -sS "$COORD_URL/v1/jobs/$JOB/best" | jq -r .line) -- "GET /best has no line"
expect test "$(curl -sS "$COORD_URL/v1/jobs/$JOB/best" | jq -r .line)" = "${CONTROL_LINES[-1]}" -- "GET /best line differs from the control's final line"

result "$RECORDS records stored once each (0 lost, 0 duplicated); killed after $RELOADED stored, down $downtime s, $SPOOLED submission(s) spooled; Best values lines = undisturbed run"
