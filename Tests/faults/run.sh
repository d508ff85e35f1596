#!/usr/bin/env bash
# ghostnet-d — the fault suite (`make test-faults`).
#
#   Tests/faults/run.sh [NUMBER...]      (no numbers: every scenario)
#
# Runs each scenario in Tests/faults/scenarios/ (N-name.sh) under a hard timeout given in its
# `# timeout: SECONDS` header line, prints one line per scenario —
#     PASS|FAIL  N name  (elapsed)  key numbers or the failure
# — and ends with the line `P passed, F failed`; exits 1 when any failed. Each scenario's full
# output is kept in .build/faults/N-name.log (overwritten per run). A scenario cleans up after itself
# (Tests/faults/lib.sh); the runner's timeout sends SIGTERM to the scenario's process group first,
# so that clean-up runs, and SIGKILL 15 s later.
#
# Environment: GHOSTNET_BIN (default .build/release/ghostnet-d).
set -uo pipefail

FAULTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$FAULTS_DIR/../.." && pwd)
export GHOSTNET_ROOT=$ROOT
export GHOSTNET_BIN=${GHOSTNET_BIN:-$ROOT/.build/release/ghostnet-d}
LOG_DIR=$ROOT/.build/faults
mkdir -p "$LOG_DIR"

selected() {
    [[ $# -eq 1 ]] && return 0
    local number=$1
    shift
    local wanted
    for wanted in "$@"; do [[ "$wanted" == "$number" ]] && return 0; done
    return 1
}

passed=0
failed=0
suite_start=$(date +%s)
for script in "$FAULTS_DIR"/scenarios/[0-9]*.sh; do
    name=$(basename "$script" .sh)
    number=${name%%-*}
    selected "$number" "$@" || continue
    limit=$(sed -n 's/^# timeout: \([0-9][0-9]*\).*/\1/p' "$script" | head -n 1)
    limit=${limit:-300}
    log=$LOG_DIR/$name.log
    start=$(date +%s.%N)
    timeout --signal=TERM --kill-after=15 "$limit" bash "$script" >"$log" 2>&1
    status=$?
    elapsed=$(awk -v start="$start" -v end="$(date +%s.%N)" 'BEGIN { printf "%.1f", end - start }')
    if [[ $status -eq 0 ]]; then
        passed=$((passed + 1))
        verdict=PASS
        detail=$(sed -n 's/^RESULT: //p' "$log" | tail -n 1)
    else
        failed=$((failed + 1))
        verdict=FAIL
        if [[ $status -eq 124 || $status -eq 137 || $status -eq 143 ]]; then
            detail="timed out after $limit s"
        else
            detail=$(sed -n 's/^FAIL: //p' "$log" | tail -n 1)
            detail=${detail:-exit status $status}
        fi
        detail="$detail (log: ${log#"$ROOT"/})"
    fi
    printf '%s  %-26s %6ss  %s\n' "$verdict" "$name" "$elapsed" "$detail"
done
echo "fault suite took $(($(date +%s) - suite_start)) s; logs in ${LOG_DIR#"$ROOT"/}/"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
