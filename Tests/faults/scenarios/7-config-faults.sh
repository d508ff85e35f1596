#!/usr/bin/env bash
# Scenario 7 — configuration faults.
#
# Four broken copies of conf/demo.yml: a misspelt key (`momentm`), a negative lr, a batch size of 0,
# and a data_path that does not exist. Each goes through `ghostnet-d config check`.
# Proves: each is refused (non-zero exit, within seconds) with an error naming the file, the key
# path and what was expected (a suggestion for the misspelling), before anything else happens.
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

result "refused with key path: ${checked[*]}"
