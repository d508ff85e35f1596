#!/usr/bin/env bash
# Scenario 6 — rank table faults at launch.
#
# Three broken launches, each given at most 30 s (a hang would hit that bound, not finish):
#   a. a table of 8 ranks started with `mpirun -np 2`;
#   b. a table with a duplicated rank_id, through deploy/run_distributed.sh (refused by its
#      `ranktable check` before mpirun starts) and through `mpirun -np 2` directly (refused by the
#      workers);
#   c. a hostfile order that puts a rank on the wrong server: a 2-server table (10.255.0.1 with
#      rank 0, 127.0.0.1 with rank 1) launched with both ranks on this host, so rank 0 runs on the
#      machine the table names as server 1 — what a swapped hostfile does on real servers;
#   d. a server_id that would write an extra host and slot count into mpirun's hostfile
#      ("127.0.0.1\nevil slots=64"), through deploy/run_distributed.sh.
# The job is `diagnose allreduce`, the same worker start-up (rank table, identity, MPI) as train.
# Proves: each launch exits non-zero within seconds with the rank table error (file, JSON path or
# ranks named), not an MPI hang, and leaves no ghostnet-d process behind; the injected host never
# reaches a hostfile.
# timeout: 150
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
fault_init

TABLES=$ROOT/rank_tables
timings=()

# launch NAME EXPECTED-TEXT COMMAND...: runs COMMAND (30 s bound), requires a non-zero exit and
# EXPECTED-TEXT in its output, and records the time it took.
launch() {
    local name=$1 expected=$2
    shift 2
    local start status=0
    start=$(now)
    timeout --kill-after=5 30 "$@" >"$WORK/$name.out" 2>&1 || status=$?
    local took
    took=$(seconds_since "$start")
    [[ $status -ne 124 && $status -ne 137 ]] || fail "$name: still running after 30 s (a hang)"
    [[ $status -ne 0 ]] || fail "$name: exited 0"
    grep -qF -- "$expected" "$WORK/$name.out" || { cat "$WORK/$name.out"; fail "$name: no '$expected' in the output"; }
    [[ -z "$(ghostnet_processes diagnose)" ]] || fail "$name: ghostnet-d processes left: $(ghostnet_processes diagnose)"
    note "$name: exit $status after $took s: $(grep -m 1 -F -- "$expected" "$WORK/$name.out")"
    timings+=("$name ${took}s")
}

JOB=(diagnose allreduce --elements 1001 --collective-timeout 20)

# a. Table size ≠ -np.
launch size-mismatch "MPI world size 2 ≠ the rank table's 8 ranks" \
    mpirun -np 2 "${MPIRUN_LOCAL[@]}" "$GHOSTNET_BIN" "${JOB[@]}" --rank-table "$TABLES/rank_table_1x8.json"

# b. Duplicated rank_id.
sed 's/"rank_id": "1"/"rank_id": "0"/' "$TABLES/rank_table_1x2.json" >"$WORK/duplicate.json"
launch duplicate-script "server_list[0].device[1].rank_id" \
    env GHOSTNET_COMMAND="${JOB[*]}" bash "$ROOT/deploy/run_distributed.sh" "$WORK/duplicate.json"
grep -q "ghostnet-d: .* rank(s) on" "$WORK/duplicate-script.out" && fail "duplicate-script: run_distributed.sh went on to mpirun"
launch duplicate-mpirun "server_list[0].device[1].rank_id" \
    mpirun -np 2 "${MPIRUN_LOCAL[@]}" "$GHOSTNET_BIN" "${JOB[@]}" --rank-table "$WORK/duplicate.json"

# c. A rank on the wrong server.
"$GHOSTNET_BIN" ranktable generate --servers 10.255.0.1,127.0.0.1 --ranks-per-server 1 --out "$WORK/two-servers.json" >/dev/null
launch wrong-server "rank 0 belongs to server '10.255.0.1'" \
    mpirun -np 2 "${MPIRUN_LOCAL[@]}" "$GHOSTNET_BIN" "${JOB[@]}" --rank-table "$WORK/two-servers.json"
grep -qF "check the hostfile order" "$WORK/wrong-server.out" || fail "wrong-server: the error does not point at the hostfile order"

# d. A host injected through server_id (rule 21).
sed 's/"server_id": "127.0.0.1"/"server_id": "127.0.0.1\\nevil slots=64"/' "$TABLES/rank_table_1x2.json" >"$WORK/injected.json"
grep -qF 'evil slots=64' "$WORK/injected.json" || fail "injected: the table was not modified"
launch injected-host 'server_list[0].server_id: server_id "127.0.0.1\nevil slots=64" is not a host name or an IP address' \
    env GHOSTNET_COMMAND="${JOB[*]}" bash "$ROOT/deploy/run_distributed.sh" "$WORK/injected.json"
grep -q "ghostnet-d: .* rank(s) on" "$WORK/injected-host.out" && fail "injected-host: run_distributed.sh went on to mpirun"
"$GHOSTNET_BIN" ranktable hostfile "$WORK/injected.json" >"$WORK/injected.hostfile" 2>/dev/null \
    && fail "injected-host: ranktable hostfile wrote $(cat "$WORK/injected.hostfile")"

result "refused: ${timings[*]}"
