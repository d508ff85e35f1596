#!/usr/bin/env bash
# ghostnet-d — single-process training launcher.
#
#   deploy/run_standalone.sh [CONFIG]
#
# Runs one ghostnet-d process without MPI (rank 0 of 1) under `ghostnet-d launch`, which restarts
# it with --resume after a failure a restart can cure (see deploy/run_distributed.sh for the
# environment: GHOSTNET_BIN, GHOSTNET_COMMAND, default "train --config CONFIG", and
# GHOSTNET_LAUNCH_ARGS). A rank table inherited from the environment is ignored (RANK_TABLE_FILE
# and MINDSPORE_HCCL_CONFIG_PATH are unset).
set -euo pipefail

if [[ $# -gt 1 ]]; then
    echo "Usage: bash deploy/run_standalone.sh [CONFIG]" >&2
    exit 1
fi
CONFIG=${1:-$(dirname "${BASH_SOURCE[0]}")/../conf/ghostnet_d.yml}
# shellcheck source=deploy/launch_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/launch_common.sh"
resolve_launch "$CONFIG"
unset RANK_TABLE_FILE MINDSPORE_HCCL_CONFIG_PATH RANK_ID RANK_SIZE
exec "$GHOSTNET_BIN" "${LAUNCH[@]}"
