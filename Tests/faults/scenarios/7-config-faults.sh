#!/usr/bin/env bash
# Scenario 7 — configuration faults.
#
# Broken copies of conf/demo.yml: a misspelt key (`momentm`), a negative lr, a batch size of 0, a
# data_path that does not exist, and the hostile ones of issue 19: a width near Int.max, an empty
# `epochs:`, a base-60 `1:30` and a `!!python/object` tag. Each goes through `ghostnet-d config check`,
# then through `mpirun -np 2 ghostnet-d train` (bounded at 30 s). A billion-laughs alias bomb goes
# through `config check` alone.
# Proves: each is refused (non-zero exit, within seconds) with an error naming the file, the key
# path and what was expected (a suggestion for the misspelling); `train` refuses with the same
# message as `check` (one validator); under mpirun both ranks stop before either waits on the
# other, and no train process is left; the alias bomb is refused in well under a second.
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
variant huge-width 's/width: 16/width: 4611686018427387904/'
variant empty-epochs 's/epochs: 30/epochs:/'
variant base-60 's/epochs: 30/epochs: 1:30/'
variant python-tag 's/epochs: 30/epochs: !!python\/object:os.system 30/'

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
refused negative-lr "fully_train.trainer.optimizer.params.lr: expected a number in (0, 100], got \`-0.1\`" "$WORK/negative-lr.yml:"
refused zero-batch "fully_train.dataset.common.batch_size: expected an integer in [1, 65536], got \`0\`" "$WORK/zero-batch.yml:"
refused missing-data "fully_train.dataset.common.data_path: $WORK/no-such-folder does not exist" "$WORK/missing-data.yml:"
refused huge-width "fully_train.model.model_desc.width: expected an integer in [2, 1024], got \`4611686018427387904\`" \
    "$WORK/huge-width.yml:"
refused empty-epochs "fully_train.trainer.epochs: expected an integer in [1, 100000], got nothing" "$WORK/empty-epochs.yml:"
refused base-60 "fully_train.trainer.epochs: expected an integer in [1, 100000], got \`1:30\`" "$WORK/base-60.yml:"
refused python-tag "fully_train.trainer.epochs: unsupported YAML tag \`!!python/object:os.system\`" "$WORK/python-tag.yml:"

# The billion laughs: 9 levels of 9 aliases (387 million strings expanded). Refused before expansion.
{
    printf 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    previous=a
    for name in b c d e f g h i; do
        printf '%s: &%s [%s]\n' "$name" "$name" "$(printf "*$previous,%.0s" 1 2 3 4 5 6 7 8)*$previous"
        previous=$name
    done
} >"$WORK/alias-bomb.yml"
refused alias-bomb "alias-bomb.yml:1:4: \`&a\`: YAML anchors and aliases are not accepted" "$WORK/alias-bomb.yml"
unset 'checked[-1]'

needs_train
train_times=()
for name in "${checked[@]}"; do
    start=$(now)
    status=0
    (cd "$WORK" && timeout --kill-after=5 30 mpirun -np 2 "${MPIRUN_LOCAL[@]}" "$GHOSTNET_BIN" train --config "$WORK/$name.yml" \
        --rank-table "$ROOT/rank_tables/rank_table_1x2.json") >"$WORK/$name-train.out" 2>&1 || status=$?
    took=$(seconds_since "$start")
    [[ $status -ne 0 && $status -ne 124 && $status -ne 137 ]] || { tail -n 20 "$WORK/$name-train.out"; fail "$name: mpirun train exited $status after $took s"; }
    # The same message as `config check` (one validator), from both ranks.
    expected=$(grep -m 1 -o "fully_train\.[a-z_.]*: [^;]*" "$WORK/$name.out")
    reported=$(grep -c -F "$expected" "$WORK/$name-train.out" || true)
    [[ $reported -ge 2 ]] || { cat "$WORK/$name-train.out"; fail "$name: mpirun train did not report '$expected' on both ranks"; }
    sleep 0.5
    [[ -z "$(ghostnet_processes train)" ]] || fail "$name: train processes left: $(ghostnet_processes train)"
    train_times+=("$name ${took}s")
done

result "config check refused with key path: ${checked[*]} (and the alias bomb); mpirun -np 2 train refused on both ranks: ${train_times[*]}"
