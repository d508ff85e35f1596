#!/usr/bin/env bash
# Scenario 7 — configuration faults.
#
# Four broken copies of conf/demo.yml: a misspelt key (`momentm`), a negative lr, a batch size of 0,
# and a data_path that does not exist. Each goes through `ghostnet-d config check`, then through
# `mpirun -np 2 ghostnet-d train` (bounded at 30 s).
# Proves: each is refused (non-zero exit, within seconds) with an error naming the file, the key
# path and what was expected (a suggestion for the misspelling); under mpirun both ranks stop
# before either waits on the other, and no train process is left.
# timeout: 120
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
fault_init

DEMO=$ROOT/conf/demo.yml
mkdir -p "$WORK/data/train" "$WORK/data/val"
# variant NAME SED-EXPRESSION: a copy of the demo config, with data_path pointing at an existing folder.
variant() {
    sed -e "s|data_path: demo-run/data|data_path: $WORK/data|" -e "$2" "$DEMO" >"$WORK/$1.yml"
    cmp -s "$WORK/$1.yml" <(sed "s|data_path: demo-run/data|data_path: $WORK/data|" "$DEMO") && fail "variant $1: the edit '$2' changed nothing"
    return 0
}
variant misspelt-key 's/momentum: 0.9/momentm: 0.9/'
variant negative-lr 's/lr: 0.1$/lr: -0.1/'
variant zero-batch 's/batch_size: 32/batch_size: 0/'
variant missing-data "s|data_path: $WORK/data|data_path: $WORK/no-such-folder|"

checked=()
# refused NAME TEXT...: `config check` of variant NAME must fail and print every TEXT.
refused() {
    local name=$1 status=0 start
    shift
    start=$(now)
    (cd "$WORK" && timeout 30 "$GHOSTNET_BIN" config check "$WORK/$name.yml") >"$WORK/$name.out" 2>&1 || status=$?
    [[ $status -ne 0 && $status -ne 124 ]] || { cat "$WORK/$name.out"; fail "$name: config check exited $status"; }
    local text
    for text in "$@"; do
        grep -qF -- "$text" "$WORK/$name.out" || { cat "$WORK/$name.out"; fail "$name: no '$text' in the error"; }
    done
    note "$name ($(seconds_since "$start") s): $(grep -m 1 -F -- "$1" "$WORK/$name.out")"
    checked+=("$name")
}

refused misspelt-key "fully_train.trainer.optimizer.params.momentm: unknown key" \
    "did you mean \`fully_train.trainer.optimizer.params.momentum\`?" "$WORK/misspelt-key.yml:"
refused negative-lr "fully_train.trainer.optimizer.params.lr: expected a number > 0, got \`-0.1\`" "$WORK/negative-lr.yml:"
refused zero-batch "fully_train.dataset.common.batch_size: expected an integer >= 1, got \`0\`" "$WORK/zero-batch.yml:"
refused missing-data "fully_train.dataset.common.data_path: $WORK/no-such-folder does not exist" "$WORK/missing-data.yml:"

needs_train
train_times=()
for name in "${checked[@]}"; do
    start=$(now)
    status=0
    (cd "$WORK" && timeout --kill-after=5 30 mpirun -np 2 "${MPIRUN_LOCAL[@]}" "$GHOSTNET_BIN" train --config "$WORK/$name.yml" \
        --rank-table "$ROOT/rank_tables/rank_table_1x2.json") >"$WORK/$name-train.out" 2>&1 || status=$?
    took=$(seconds_since "$start")
    [[ $status -ne 0 && $status -ne 124 && $status -ne 137 ]] || { tail -n 20 "$WORK/$name-train.out"; fail "$name: mpirun train exited $status after $took s"; }
    expected=$(grep -m 1 -o "fully_train\.[a-z_.]*" "$WORK/$name.out")
    reported=$(grep -c -F "$expected" "$WORK/$name-train.out" || true)
    [[ $reported -ge 2 ]] || { cat "$WORK/$name-train.out"; fail "$name: mpirun train did not report '$expected' on both ranks"; }
    sleep 0.5
    [[ -z "$(ghostnet_processes train)" ]] || fail "$name: train processes left: $(ghostnet_processes train)"
    train_times+=("$name ${took}s")
done

result "config check refused with key path: ${checked[*]}; mpirun -np 2 train refused on both ranks: ${train_times[*]}"
