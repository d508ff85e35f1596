# ghostnet-d — shared by deploy/run_standalone.sh and deploy/run_distributed.sh (sourced, not run).
#
# resolve_launch CONFIG: sets GHOSTNET_BIN (default: the release build beside this script, else
# ghostnet-d on PATH) and LAUNCH, the `ghostnet-d launch` arguments that run the job: the ranks run
# GHOSTNET_COMMAND when it is set (e.g. "diagnose allreduce --elements 1001"), else
# "train --config CONFIG"; GHOSTNET_LAUNCH_ARGS adds launch options (e.g. "--max-restarts 0").
# Exits 1 saying what is missing.
resolve_launch() {
    local config=$1
    local script_dir
    script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    if [[ -z "${GHOSTNET_BIN:-}" ]]; then
        if [[ -x "$script_dir/../.build/release/ghostnet-d" ]]; then
            GHOSTNET_BIN=$(cd "$script_dir/../.build/release" && pwd)/ghostnet-d
        else
            GHOSTNET_BIN=$(command -v ghostnet-d || true)
        fi
    fi
    if [[ -z "$GHOSTNET_BIN" || ! -x "$GHOSTNET_BIN" ]]; then
        echo "error: ghostnet-d not found; build it (make build) or set GHOSTNET_BIN" >&2
        exit 1
    fi
    if [[ -n "${GHOSTNET_COMMAND:-}" ]]; then
        LAUNCH=(launch --command "$GHOSTNET_COMMAND")
    elif [[ -f "$config" ]]; then
        LAUNCH=(launch --config "$config")
    else
        echo "error: CONFIG=$config is not a file" >&2
        exit 1
    fi
    # shellcheck disable=SC2206 # GHOSTNET_LAUNCH_ARGS is a word list on purpose.
    LAUNCH+=(${GHOSTNET_LAUNCH_ARGS:-})
}
