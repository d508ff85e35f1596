#!/usr/bin/env bash
# The `make finetune-demo` job: the demo's trained model (10 classes, `make demo`) fine-tuned by 2 ranks
# to a 5-class synthetic set with few images, next to the same 5-class run from random weights.
#
#   deploy/finetune_demo.sh        (run from the repository root; runs deploy/demo.sh first when
#                                   demo-run/checkpoints holds no checkpoint)
#
# The 5-class set draws the first five of the demo's shapes in colours of their own (hues are spaced by
# class count), 60 training images per class. The fine-tuned run starts from the demo's newest checkpoint
# with `--init-from`: every tensor but the classifier matches, fc.weight and fc.bias (10 → 5 classes) are
# re-initialised, the stem and layer1 are frozen (trainer.freeze), the optimizer starts fresh. Both runs
# train conf/demo.yml's network for 5 epochs at lr 0.02; the script prints both final top-1 accuracies.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=${GHOSTNET_BIN:-.build/release/ghostnet-d}
RUN_DIR=demo-run
DATA=$RUN_DIR/finetune-data
# Both runs log the Best values line themselves rather than report to a coordinator.
unset GHOSTNET_COORDINATOR

newest_checkpoint() {
    find "$RUN_DIR/checkpoints" -maxdepth 1 -name 'ckpt-e*-s*.safetensors' ! -name '*.optimizer.safetensors' \
        2>/dev/null | sort | tail -n 1
}
if [[ -z "$(newest_checkpoint)" ]]; then
    echo "finetune-demo: no demo checkpoint in $RUN_DIR/checkpoints; running the demo first"
    GHOSTNET_BIN="$BIN" ./deploy/demo.sh
fi
PRETRAINED=$(newest_checkpoint)
echo "finetune-demo: starting from $PRETRAINED"

if [[ ! -d "$DATA/train" ]]; then
    echo "finetune-demo: generating the 5-class dataset in $DATA"
    "$BIN" dataset synth --out "$DATA" --classes 5 --train-per-class 60 --val-per-class 30 --seed 11 \
        --fixed-size 64x64
fi

# Runs conf/demo.yml on the 5-class set as job $1 with the extra train options $2 (a word list).
train() {
    local name=$1 options=$2
    rm -rf "${RUN_DIR:?}/$name"
    GHOSTNET_BIN="$BIN" GHOSTNET_COMMAND="train --config conf/demo.yml $options \
--set fully_train.dataset.common.data_path=$DATA --set fully_train.dataset.common.n_class=5 \
--set fully_train.model.model_desc.num_classes=5 --set fully_train.trainer.epochs=5 \
--set fully_train.trainer.lr_scheduler.params.T_max=5 --set fully_train.trainer.warmup_epochs=0 \
--set fully_train.trainer.optimizer.params.lr=0.02 --set fully_train.dataset.common.batch_size=16 \
--set runtime.checkpoint_dir=$RUN_DIR/$name/checkpoints --set runtime.log_dir=$RUN_DIR/$name/logs \
--set runtime.job_name=ghostnet-d-$name" \
        bash deploy/run_distributed.sh rank_tables/rank_table_1x2.json conf/demo.yml
}

train finetune "--init-from $PRETRAINED --set fully_train.trainer.freeze=[conv1,bn1,layer1]"
train scratch ""

echo
grep "init-from" "$RUN_DIR/finetune/logs/train-rank0.log" | sed 's/^/finetune-demo: /'
top1() { grep -o "validation after epoch 5: top-1 [0-9.]*" "$RUN_DIR/$1/logs/train-rank0.log" | tail -n 1; }
echo "finetune-demo: fine-tuned from the demo's weights: $(top1 finetune)"
echo "finetune-demo: trained from random weights:       $(top1 scratch)"
