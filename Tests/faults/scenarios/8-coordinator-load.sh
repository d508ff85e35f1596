#!/usr/bin/env bash
# Scenario 8 — the coordinator under load, with malformed requests interleaved, then with the progress
# reports of 1,000 running jobs added.
#
# `ghostnet-d diagnose coordinator-load` runs 20 concurrent loopback clients against a fresh
# coordinator in two phases of 30 s: new records (up to 200 per client), idempotent re-posts, reads
# of the client's own job and /healthz, and every 5th request malformed (broken JSON, NaN, missing
# field, 70 KB body, bad job name, path trick, unknown route, conflicting record, non-HTTP bytes,
# body cut short); one scraper reads /metrics and /v1/jobs every second and the dashboard every 10 s
# (as an open one reloads itself). Phase A is
# that alone; in phase B the same clients run while 1,000 more jobs each post a progress report
# every second (100 sender threads of 10 jobs each), as rank 0 of 1,000 running jobs would. The coordinator's VmRSS
# and CPU time are sampled from /proc/PID every second.
# Proves: every valid request gets its exact answer; every malformed one a 4xx (or a close); every
# scrape counts every record acknowledged before it; every acknowledged record is stored exactly
# once (read back per job, and again after a restart from the database); every acknowledged progress
# report is stored (each job's progress.csv has one row per report); the daemon still answers
# afterwards; its memory stays flat in phase B (the last RSS sample is below 1.5 × the sample 5 s
# into phase B, once the 1,000 jobs exist). The existing load figures hold with progress added:
# beside the 20 record clients the progress reports reach at least 90 % of 1,000/s (the last tick of
# each sender may fall after the deadline), and the record clients lose at most MAX_COST requests/s
# per progress report/s: their phase-B rate is at least A − MAX_COST × progress rate, i.e. the
# fraction 1 − MAX_COST × progress / A of phase A (derivation in docs/RELIABILITY.md, scenario 8).
# timeout: 170
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
fault_init

CLIENTS=20
DURATION=30
PROGRESS_JOBS=1000
# One progress report cost 1.3 record-client requests in two measured runs; 2 leaves a 1.5× margin.
MAX_COST=2
start_coordinator coordinator "$WORK/data"

# Per second: time, VmRSS in KiB, CPU seconds (user + system) of the coordinator.
TICKS=$(getconf CLK_TCK)
( while kill -0 "$COORD_PID" 2>/dev/null; do
      cpu=$(awk -v ticks="$TICKS" '{ printf "%.2f", ($14 + $15) / ticks }' "/proc/$COORD_PID/stat" 2>/dev/null || echo 0)
      echo "$(date +%s.%N) $(rss_kib "$COORD_PID" 2>/dev/null || echo 0) $cpu"
      sleep 1
  done ) >"$WORK/rss.samples" &
track_pid $!

load_status=0
"$GHOSTNET_BIN" diagnose coordinator-load --coordinator "$COORD_URL" --clients "$CLIENTS" --duration "$DURATION" \
    --job-prefix fault-load --progress-jobs "$PROGRESS_JOBS" --progress-interval 1 --progress-senders 100 \
    --scrape-interval 1 >"$WORK/load.out" 2>&1 || load_status=$?
cat "$WORK/load.out"
expect test "$load_status" -eq 0 -- "load test failed: $(grep -m 3 -e '^failure' -e 'FAILED' "$WORK/load.out" | tr '\n' ' ')"

expect test "$(curl -sS --max-time 5 "$COORD_URL/healthz" | jq -r .status)" = ok -- "coordinator does not answer /healthz after the load"
STORED_BY_LOAD=$(sed -n 's/^records stored: \([0-9]*\),.*/\1/p' "$WORK/load.out")
TOTAL=$(curl -sS "$COORD_URL/v1/jobs" | jq '[.jobs[].records] | add')
expect test "$TOTAL" -eq "$STORED_BY_LOAD" -- "coordinator holds $TOTAL records, the load generator had $STORED_BY_LOAD acknowledged"

# Memory: from 5 s into phase B (the 1,000 progress jobs exist) to its end. CPU: seconds used per phase.
read -r WARM LAST PEAK CPU_A CPU_B < <(awk -v duration="$DURATION" '
    NR == 1 { start = $1; cpu0 = $3 }
    $2 > 0 && $1 - start >= duration + 5 && warm == "" { warm = $2 }
    $2 > 0 && $1 - start <= 2 * duration + 2 { last = $2; if ($2 > peak) peak = $2 }
    $1 - start <= duration { cpu_a = $3 }
    $1 - start <= 2 * duration { cpu_b = $3 }
    END { printf "%s %s %s %.1f %.1f\n", warm, last, peak, cpu_a - cpu0, cpu_b - cpu_a }' "$WORK/rss.samples")
note "RSS 5 s into phase B ${WARM} KiB, last ${LAST} KiB, peak ${PEAK} KiB; coordinator CPU ${CPU_A} s in phase A, ${CPU_B} s in phase B"
expect test -n "$WARM" -a -n "$LAST" -- "too few RSS samples"
expect awk -v warm="$WARM" -v last="$LAST" 'BEGIN { exit !(last < 1.5 * warm) }' -- "RSS grew from $WARM KiB to $LAST KiB (≥ 1.5×)"

# Stored once, durably: a restart from the database reloads exactly the same count.
kill -TERM "$COORD_PID"
wait "$COORD_PID" || fail "coordinator did not exit 0 on SIGTERM"
: >"$WORK/coordinator.out"
start_coordinator coordinator "$WORK/data"
RELOADED=$(sed -n 's/.*loaded \([0-9]*\) records of.*/\1/p' "$WORK/coordinator.out" | tail -n 1)
expect test "$RELOADED" -eq "$STORED_BY_LOAD" -- "restart reloaded $RELOADED records, $STORED_BY_LOAD were acknowledged"

# The load figures with progress added: progress keeps pace, the record clients lose at most MAX_COST per report.
PROGRESS=$(sed -n 's/^progress reports: //p' "$WORK/load.out")
PROGRESS_RATE=$(sed -n 's/^progress reports: [0-9]* sent (\([0-9]*\)\/s).*/\1/p' "$WORK/load.out")
PROGRESS_LATENCY=$(sed -n 's/^latency of progress reports: //p' "$WORK/load.out")
expect test -n "$PROGRESS_RATE" -- "the load test printed no progress figures"
expect test "$PROGRESS_RATE" -ge $((PROGRESS_JOBS * 9 / 10)) -- \
    "progress reports at $PROGRESS_RATE/s beside $CLIENTS record clients, below 90 % of $PROGRESS_JOBS jobs × 1/s"
PHASE_A=$(sed -n 's/^phase records only: //p' "$WORK/load.out")
PHASE_B=$(sed -n 's/^phase records + progress: //p' "$WORK/load.out")
RATE_A=$(sed -n 's/^phase records only: .*(\([0-9]*\)\/s)$/\1/p' "$WORK/load.out")
RATE_B=$(sed -n 's/^phase records + progress: .*(\([0-9]*\)\/s)$/\1/p' "$WORK/load.out")
RATIO=$(sed -n 's/^records rate beside progress: \([0-9.]*\) .*/\1/p' "$WORK/load.out")
expect test -n "$RATE_A" -a -n "$RATE_B" -a -n "$RATIO" -- "the load test printed no per-phase rates"
MIN_RATIO=$(awk -v a="$RATE_A" -v p="$PROGRESS_RATE" -v cost="$MAX_COST" 'BEGIN { printf "%.2f", 1 - cost * p / a }')
expect awk -v ratio="$RATIO" -v min="$MIN_RATIO" 'BEGIN { exit !(ratio >= min) }' -- \
    "record clients beside progress at $RATIO of their records-only rate ($RATE_B/s of $RATE_A/s), below $MIN_RATIO = 1 − $MAX_COST × $PROGRESS_RATE/$RATE_A"
SCRAPES=$(sed -n 's/^scrapes of \/metrics, \/v1\/jobs (and \/ every 10 s): //p' "$WORK/load.out")
MALFORMED=$(sed -n 's/^malformed refused: \(.*\)$/\1/p' "$WORK/load.out")
LATENCY=$(sed -n 's/^latency of valid requests: //p' "$WORK/load.out")
result "$CLIENTS clients × 2 × ${DURATION} s: records only $PHASE_A; beside progress $PHASE_B (ratio $RATIO ≥ $MIN_RATIO); progress $PROGRESS, $PROGRESS_LATENCY; scrapes $SCRAPES; malformed refused $MALFORMED, $STORED_BY_LOAD records stored once (reloaded $RELOADED); RSS ${WARM}→${LAST} KiB (peak $PEAK); CPU A ${CPU_A} s, B ${CPU_B} s; $LATENCY"
