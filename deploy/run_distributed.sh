#!/usr/bin/env bash
# ghostnet-d — distributed training launcher.
#
#   deploy/run_distributed.sh RANK_TABLE_FILE [CONFIG]
#
# Runs the job under `ghostnet-d launch --rank-table RANK_TABLE_FILE`, the supervisor: it checks the
# rank table, builds an OpenMPI hostfile from it and starts one process per rank with mpirun, on
# every server the table names (only locally, over loopback, when it names a single server); a
# failure a restart can cure (a rank killed, a collective timeout, a lost server) is restarted with
# --resume (3 restarts within 1 h by default; see docs/RELIABILITY.md for the exit statuses). Each
# rank runs
#     $GHOSTNET_BIN $GHOSTNET_COMMAND --rank-table RANK_TABLE_FILE
# Environment:
#   GHOSTNET_BIN        the ghostnet-d binary (default: .build/release/ghostnet-d, else on PATH)
#   GHOSTNET_COMMAND    the subcommand and its options (default: "train --config CONFIG")
#   GHOSTNET_LAUNCH_ARGS  options of `ghostnet-d launch`, e.g. "--max-restarts 5 --restart-window 2h"
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
exec "$GHOSTNET_BIN" "${LAUNCH[@]}" --rank-table "$RANK_TABLE_FILE"
