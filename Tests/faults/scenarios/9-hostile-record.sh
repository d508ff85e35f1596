#!/usr/bin/env bash
# Scenario 9 — hostile records in the coordinator's database; the coordinator restarts twice.
#
# A record whose epoch is 9223372036854775807 is refused at the door (422 naming the field). Then,
# with the coordinator stopped, rows an older version could have stored go straight into
# records.sqlite (python3's sqlite3 module): that epoch, an epoch of 1e300 and of 'many', a
# timestamp of 1e300, a NaN metric, 64 metrics, a job name and a worker_id holding a newline and a
# forged "INFO Best values" line. The coordinator is started on it twice.
# Proves: each start stays up (alive 2 s after listening, /healthz ok), GET / and GET /metrics
# answer 200, the valid record is served and the 8 bad rows are each named once per start in a
# WARNING line, and no log line starts with a timestamp the coordinator did not write.
# timeout: 120
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
fault_init

JOB=fault-hostile
DATA=$WORK/data
record() { # EPOCH STEP: a valid record body except for EPOCH
    printf '{"worker_id":"0","rank":0,"epoch":%s,"step":%s,"performance":{"accuracy_top1":0.5,"loss":1.5},"timestamp":1700000000}' "$1" "$2"
}
post() { curl -sS --max-time 10 -o "$WORK/answer.json" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$2" "$COORD_URL/v1/jobs/$1/records"; }

start_coordinator main "$DATA"
expect test "$(post "$JOB" "$(record 1 10)")" = 201 -- "the valid record was not stored"
status=$(post "$JOB" "$(record 9223372036854775807 11)")
expect test "$status" = 422 -- "epoch 9223372036854775807 answered $status, expected 422"
expect grep -q "field 'epoch' must be an integer in 0...1000000" "$WORK/answer.json" -- "the refusal does not name the field: $(cat "$WORK/answer.json")"
kill -TERM "$COORD_PID"
wait "$COORD_PID" || fail "coordinator did not exit 0 on SIGTERM"

FORGED="2001-02-03 04:05:06.789 INFO Best values: [{'worker_id': 'forged', 'performance': {'accuracy_top1': 1.0}}]"
python3 - "$DATA/records.sqlite" "$JOB" "$FORGED" <<'PYTHON'
import sqlite3, sys
path, job, forged = sys.argv[1:]
good = '{"accuracy_top1":0.5}'
rows = [
    (job, "w", 9223372036854775807, 100, good, 1.7e9),
    (job, "w", 1e300, 101, good, 1.7e9),
    (job, "w", "many", 102, good, 1.7e9),
    (job, "w", 3, 103, good, 1e300),
    (job, "w", 4, 104, '{"accuracy_top1":"NaN"}', 1.7e9),
    (job, "w", 5, 105, "{" + ",".join(f'"m{i}":{i}' for i in range(64)) + "}", 1.7e9),
    ("bad\n" + forged, "w", 6, 106, good, 1.7e9),
    (job, "w\n" + forged, 7, 107, good, 1.7e9),
]
with sqlite3.connect(path) as db:
    db.executemany("INSERT INTO record (job, worker_id, rank, epoch, step, performance, timestamp, received_at) "
                   "VALUES (?, ?, 0, ?, ?, ?, ?, 0)", rows)
PYTHON
BAD_ROWS=8

for start in 1 2; do
    : >"$WORK/main.out"
    start_coordinator main "$DATA"
    sleep 2
    expect kill -0 "$COORD_PID" -- "start $start: the coordinator died after listening: $(tail -n 5 "$WORK/main.out")"
    expect test "$(curl -sS --max-time 5 "$COORD_URL/healthz" | jq -r .status)" = ok -- "start $start: /healthz does not answer"
    for path in / /metrics; do
        code=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$COORD_URL$path")
        expect test "$code" = 200 -- "start $start: GET $path answered $code"
    done
    expect test "$(records_json "$COORD_URL" "$JOB" | jq length)" -eq 1 -- "start $start: the valid record is not served alone"
    skipped=$(grep -c "WARNING skipped stored record id" "$WORK/main.out" || true)
    expect test "$skipped" -eq "$BAD_ROWS" -- "start $start: $skipped bad rows named, expected $BAD_ROWS"
    kill -TERM "$COORD_PID"
    wait "$COORD_PID" || fail "start $start: coordinator did not exit 0 on SIGTERM"
done

# Every line of the log starts with the coordinator's own timestamp: none from 2001.
LINES=$(wc -l <"$WORK/main.log")
OWN=$(grep -cE "^$(date +%Y)-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} (INFO|WARNING|ERROR) " "$WORK/main.log" || true)
expect test "$OWN" -eq "$LINES" -- "$((LINES - OWN)) log line(s) do not start with the coordinator's timestamp"
expect test "$(grep -c '^2001-' "$WORK/main.log" || true)" -eq 0 -- "a forged line reached the log"
note "$(grep -m 1 'skipped stored record id' "$WORK/main.log")"

result "epoch 9223372036854775807 refused with 422; $BAD_ROWS hostile rows skipped and named at each of 2 restarts; GET /, /metrics, /healthz 200; $LINES log lines, all the coordinator's own"
