#!/usr/bin/env bash
# ghostnet-d — distributed training launcher.
#
#   deploy/run_distributed.sh RANK_TABLE_FILE [CONFIG]
#
# Checks the rank table, builds an OpenMPI hostfile from it (`ghostnet-d ranktable hostfile`) and
# starts one process per rank with mpirun, on every server the table names (only locally, over
# loopback, when it names a single server). Each rank runs
#     $GHOSTNET_BIN $GHOSTNET_COMMAND --rank-table RANK_TABLE_FILE
# Environment:
#   GHOSTNET_BIN        the ghostnet-d binary (default: .build/release/ghostnet-d, else on PATH)
#   GHOSTNET_COMMAND    the subcommand and its options (default: "train --config CONFIG")
#   MPIRUN              the mpirun command, may include a prefix (default: mpirun)
#   MPIRUN_ARGS         extra mpirun options, e.g. "--mca btl_tcp_if_include eth1 --mca oob_tcp_if_include eth1"
#   OPENBLAS_CORETYPE   exported to every rank when set
#   OPENBLAS_NUM_THREADS  exported to every rank when set (default in ghostnet-d: cores ÷ ranks on a server)
#   GHOSTNET_COORDINATOR, GHOSTNET_COORDINATOR_TOKEN_FILE, GHOSTNET_CACHE_DIR, OPENBLAS_L2_SIZE
#                       exported to every rank when set
# See deploy/README.md for multi-node set-up.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "Usage: bash deploy/run_distributed.sh RANK_TABLE_FILE [CONFIG]" >&2
    exit 1
fi

absolute_path() {
    if [[ "$1" = /* ]]; then echo "$1"; else echo "$(pwd)/$1"; fi
}

RANK_TABLE_FILE=$(absolute_path "$1")
CONFIG=$(absolute_path "${2:-$(dirname "${BASH_SOURCE[0]}")/../conf/ghostnet_d.yml}")
if [[ ! -f "$RANK_TABLE_FILE" ]]; then
    echo "error: RANK_TABLE_FILE=$RANK_TABLE_FILE is not a file" >&2
    exit 1
fi

# shellcheck source=deploy/launch_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/launch_common.sh"
resolve_launch "$CONFIG"

# Validates the table (exit 1 with the reason) and lists its servers with their slot counts.
"$GHOSTNET_BIN" ranktable check "$RANK_TABLE_FILE" >/dev/null
HOSTFILE=$(mktemp "${TMPDIR:-/tmp}/ghostnet-hostfile.XXXXXX")
trap 'rm -f "$HOSTFILE"' EXIT
"$GHOSTNET_BIN" ranktable hostfile "$RANK_TABLE_FILE" >"$HOSTFILE"
SERVERS=$(wc -l <"$HOSTFILE")
RANKS=$(awk -F'slots=' '{ total += $2 } END { print total }' "$HOSTFILE")

LAUNCH=(-np "$RANKS" --bind-to none)
if [[ "$SERVERS" -eq 1 ]]; then
    # One server: every rank on this host, talking over loopback.
    # Shared memory (vader) between the ranks: the plain all-reduce is about twice as fast as over
    # loopback TCP here (docs/PERFORMANCE.md).
    LAUNCH+=(--oversubscribe --mca btl self,vader,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo)
else
    LAUNCH+=(--hostfile "$HOSTFILE" --map-by slot)
fi
if [[ $(id -u) -eq 0 ]]; then
    LAUNCH+=(--allow-run-as-root)
fi
# Forwarded to every rank (on other servers mpirun passes only what -x names).
for variable in OPENBLAS_CORETYPE OPENBLAS_NUM_THREADS OPENBLAS_L2_SIZE GHOSTNET_COORDINATOR \
    GHOSTNET_COORDINATOR_TOKEN_FILE GHOSTNET_COORDINATOR_CA GHOSTNET_CACHE_DIR; do
    if [[ -n "${!variable:-}" ]]; then LAUNCH+=(-x "$variable"); fi
done

echo "ghostnet-d: $RANKS rank(s) on $SERVERS server(s) from $RANK_TABLE_FILE" >&2
# shellcheck disable=SC2086 # MPIRUN, MPIRUN_ARGS and COMMAND are word lists on purpose.
exec ${MPIRUN:-mpirun} "${LAUNCH[@]}" ${MPIRUN_ARGS:-} "$GHOSTNET_BIN" $COMMAND --rank-table "$RANK_TABLE_FILE"
