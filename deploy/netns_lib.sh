# ghostnet-d's two-server harness without real nodes (sourced, not run): two Linux network namespaces
# joined by a veth pair stand for servers 10.77.0.1 and 10.77.0.2, which exist only inside them, and
# mpirun in the first reaches the second through a plm_rsh_agent that runs the remote command with
# `ip netns exec`, so the ranks really talk TCP across the veth link. Used by
# deploy/test_netns_multinode.sh and Tests/faults/scenarios/14-server-lost.sh.
#
# netns_create TAG DIR: creates the namespaces $NETNS_A and $NETNS_B (gnd-TAGa-PID, gnd-TAGb-PID), links
#   and addresses them, writes the agent DIR/netns-rsh and exports MPIRUN and MPIRUN_ARGS for
#   deploy/run_distributed.sh and `ghostnet-d launch`. When namespaces cannot be created here
#   (needs root / CAP_NET_ADMIN) it leaves NETNS_A empty and nothing behind; the caller then skips.
#   Call it as a plain command, not in a condition, so that `set -e` stops at a step that fails.
#   When DIR/b-sees holds "SOURCE TARGET", the agent gives 10.77.0.2 a private mount namespace in
#   which SOURCE is bind-mounted over TARGET: that server's copy of a folder differs from the other's.
# netns_take_down NS: kills every process in NS and deletes it: the server neither runs nor answers.
# netns_remove: takes both namespaces down (for an EXIT trap; harmless when already gone).

NETNS_A=
NETNS_B=

netns_create() {
    local tag=$1 dir=$2 suffix=$$
    NETNS_A=gnd-${tag}a-$suffix
    NETNS_B=gnd-${tag}b-$suffix
    if ! ip netns add "$NETNS_A" 2>/dev/null; then
        NETNS_A=
        NETNS_B=
        return 0
    fi
    ip netns add "$NETNS_B"
    # Interface names have at most 15 bytes: "veth-" + tag + a/b + a PID of up to 7 digits.
    local veth_a=veth-${tag}a$suffix veth_b=veth-${tag}b$suffix
    ip link add "$veth_a" type veth peer name "$veth_b"
    ip link set "$veth_a" netns "$NETNS_A"
    ip link set "$veth_b" netns "$NETNS_B"
    ip -n "$NETNS_A" addr add 10.77.0.1/24 dev "$veth_a"
    ip -n "$NETNS_B" addr add 10.77.0.2/24 dev "$veth_b"
    local ns
    for ns in "$NETNS_A" "$NETNS_B"; do ip -n "$ns" link set lo up; done
    ip -n "$NETNS_A" link set "$veth_a" up
    ip -n "$NETNS_B" link set "$veth_b" up

    # mpirun calls the agent as `agent HOST COMMAND...`; run COMMAND inside that host's namespace.
    cat >"$dir/netns-rsh" <<AGENT
#!/usr/bin/env bash
host=\$1; shift
case "\$host" in
    10.77.0.1) ns=$NETNS_A ;;
    10.77.0.2) ns=$NETNS_B ;;
    *) echo "netns-rsh: unknown host \$host" >&2; exit 255 ;;
esac
if [[ "\$host" == 10.77.0.2 && -s "$dir/b-sees" ]]; then
    read -r source target <"$dir/b-sees"
    exec ip netns exec "\$ns" unshare -m /bin/sh -c "mount --bind \$source \$target && exec \$*"
fi
exec ip netns exec "\$ns" /bin/sh -c "\$*"
AGENT
    chmod +x "$dir/netns-rsh"
    export MPIRUN="ip netns exec $NETNS_A mpirun"
    export MPIRUN_ARGS="--mca plm_rsh_agent $dir/netns-rsh --mca btl self,tcp --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24"
}

netns_take_down() {
    local pid
    for pid in $(ip netns pids "$1" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$1" 2>/dev/null || true
}

netns_remove() {
    [[ -n "$NETNS_B" ]] && netns_take_down "$NETNS_B"
    [[ -n "$NETNS_A" ]] && netns_take_down "$NETNS_A"
    return 0
}
