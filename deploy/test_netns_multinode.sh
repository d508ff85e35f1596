#!/usr/bin/env bash
# ghostnet-d — two-"server" MPI test without real nodes.
#
#   deploy/test_netns_multinode.sh [GHOSTNET_BIN]
#
# Two Linux network namespaces stand for two servers, joined by a veth pair (10.77.0.1 and
# 10.77.0.2, which exist only inside these namespaces; deploy/netns_lib.sh sets them up). mpirun
# runs in the first namespace and reaches the second through a plm_rsh_agent script that runs the
# remote command with `ip netns exec`, so the ranks really talk TCP across the veth link. The jobs are
# deploy/run_distributed.sh on a generated 2 × 1 rank table running `diagnose allreduce`, then
# `diagnose world` on one dataset, then `train` where the second server sees a renamed class folder.
# Needs root (CAP_NET_ADMIN); otherwise it says so and exits 0 (skipped). Namespaces are
# always removed. Exit status: 0 passed or skipped, 1 failed.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GHOSTNET_BIN=${1:-${GHOSTNET_BIN:-$SCRIPT_DIR/../.build/release/ghostnet-d}}
GHOSTNET_BIN=$(cd "$(dirname "$GHOSTNET_BIN")" && pwd)/$(basename "$GHOSTNET_BIN")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ghostnet-netns.XXXXXX")
# shellcheck source=deploy/netns_lib.sh
source "$SCRIPT_DIR/netns_lib.sh"

cleanup() {
    netns_remove
    rm -rf "$WORK"
}
trap cleanup EXIT

netns_create "" "$WORK"
if [[ -z "$NETNS_A" ]]; then
    echo "SKIPPED: cannot create network namespaces here (needs root / CAP_NET_ADMIN)"
    exit 0
fi

"$GHOSTNET_BIN" ranktable generate --servers 10.77.0.1,10.77.0.2 --ranks-per-server 1 --out "$WORK/rank_table_2x1.json"

# A launch without a log folder keeps its hostfiles in a temporary folder of its own, removed when it ends.
launch_folders() { { compgen -G "${TMPDIR:-/tmp}/ghostnet-launch-*" || true; } | wc -l; }
LAUNCH_FOLDERS_BEFORE=$(launch_folders)

export GHOSTNET_BIN
export GHOSTNET_COMMAND="diagnose allreduce --elements 300007 --bucket-bytes 65536 --collective-timeout 60"
failed() {
    echo "FAILED: $*" >&2
    cat "$WORK/out" "$WORK/err" >&2
    exit 1
}
# launch EXPECTED-STATUS TEXT: runs the job, which must exit with status 0 (EXPECTED-STATUS "ok")
# or not ("fails") and print TEXT.
launch() {
    local status=0
    timeout 120 "$SCRIPT_DIR/run_distributed.sh" "$WORK/rank_table_2x1.json" >"$WORK/out" 2>"$WORK/err" || status=$?
    [[ ($1 == ok && $status -eq 0) || ($1 == fails && $status -ne 0 && $status -ne 124) ]] \
        || failed "$GHOSTNET_COMMAND exited with status $status"
    grep -qF -- "$2" "$WORK/out" "$WORK/err" || failed "$GHOSTNET_COMMAND did not print '$2'"
}

launch ok "over 2 rank(s), 2 steps: ok"
cat "$WORK/out"
grep -h "^rank " "$WORK/err" || true

# The world agreement across the two servers (issue 20): the same dataset passes `diagnose world`,
# which prints what the fingerprint and the gather cost; then 10.77.0.2 sees a copy with a class
# folder renamed (same class count) and `train` refuses to start, naming that server.
"$GHOSTNET_BIN" dataset synth --out "$WORK/data" --classes 4 --train-per-class 4 --val-per-class 1 \
    --fixed-size 32x32 >/dev/null
cp -r "$WORK/data" "$WORK/data-renamed"
for split in train val; do mv "$WORK/data-renamed/$split/n00000003" "$WORK/data-renamed/$split/n00000009"; done
cat >"$WORK/world.yml" <<YAML
pipeline: [fully_train]
fully_train:
    model:
        model_desc: {type: ghostnet_d.ghostnet50, width: 4, image_size: 16, blocks: [2, 2, 2, 2]}
    trainer: {epochs: 1}
    dataset:
        common: {data_path: $WORK/data, batch_size: 2, n_class: 4, workers: 1}
runtime: {checkpoint_dir: $WORK/checkpoints, log_dir: $WORK/logs}
YAML
export GHOSTNET_COMMAND="diagnose world --config $WORK/world.yml"
launch ok "verdict: every rank agrees"
grep -h "^fingerprint " "$WORK/out"
echo "$WORK/data-renamed $WORK/data" >"$WORK/b-sees"
export GHOSTNET_COMMAND="train --config $WORK/world.yml"
launch fails "dataset differs: server 1 (10.77.0.2, rank 1) and server 0 (10.77.0.1, rank 0) list different train classes; first difference at class 3: n00000003 on server 0, n00000009 on server 1"
grep -h -m 1 "dataset differs" "$WORK/out" "$WORK/err"
[[ $(launch_folders) -eq $LAUNCH_FOLDERS_BEFORE ]] || failed "a launch left its temporary ghostnet-launch-* folder behind"
echo "PASSED: 2 ranks in 2 network namespaces exchanged gradients over the veth link; the world check passed, then stopped a server with a renamed class folder"
