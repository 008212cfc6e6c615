#!/usr/bin/env bash
# Bit-width sweep reproduction on real CIFAR-10, sized for a small CPU.
#
# Pretrains SimSiam and SSQL-SimSiam with identical data, model, schedule and
# seed, then evaluates both checkpoints at FP, 8w8a, 6w6a, 5w5a, 4w4a, 3w3a
# and 2w4a with tools/bit_sweep.py (kNN and linear probe on frozen features).
#
# Reduced sizes (the paper: full CIFAR-10, full-width ResNet-18, 400 epochs):
#   data      first 500 training images per class (5,000) for pretraining and
#             as the kNN bank / linear-probe training set; first 100 test
#             images per class (1,000) for testing; read from the archives.
#   model     CIFAR ResNet-18 with 8 stem/base channels (8-16-32-64, 64-d
#             features), projector 3 x 512, predictor 512 -> 128 -> 512.
#   schedule  EPOCHS epochs (default 4) of batch 128, SGD lr 0.05, momentum
#             0.9, wd 5e-4, cosine to 0 (the configs' values, no LR scaling).
#
# Usage (from the repository root):
#   bash tools/benchmarks/repro_cifar10.sh [ARCHIVE_DIR]
# ARCHIVE_DIR holds train.tar.gz and test.tar.gz (default ../shared/data/cifar10).
# Environment: EPOCHS, WORK (default work_dirs/repro), PYTHON (default python).
set -euo pipefail

ARCHIVES=${1:-../shared/data/cifar10}
EPOCHS=${EPOCHS:-4}
WORK=${WORK:-work_dirs/repro}
PYTHON=${PYTHON:-python}
DATA=data/cache/cifar10_500pc
WIDTH=8

mkdir -p "$WORK"
if [ ! -d "$DATA/test" ]; then
    "$PYTHON" -c "from ssql_mm.datasets import make_cifar10_subset as m; \
print(m('$ARCHIVES', '$DATA', {'train': 500, 'test': 100}))"
fi

COMMON=(
    train_dataloader.dataset.data_root="$DATA"
    train_dataloader.batch_size=128
    train_dataloader.num_workers=1
    model.backbone.stem_channels=$WIDTH
    model.backbone.base_channels=$WIDTH
    model.neck.in_channels=$((WIDTH * 8))
    model.neck.hid_channels=512
    model.neck.out_channels=512
    model.head.predictor.in_channels=512
    model.head.predictor.hid_channels=128
    model.head.predictor.out_channels=512
    train_cfg.max_epochs=$EPOCHS
    param_scheduler.0.T_max=$EPOCHS
    param_scheduler.0.end=$EPOCHS
    default_hooks.logger.interval=5
    default_hooks.checkpoint.interval=$EPOCHS
    randomness.seed=0
)

train() {  # name config
    "$PYTHON" tools/train.py "$2" --work-dir "$WORK/$1" \
        --cfg-options "${COMMON[@]}" > "$WORK/$1.log" 2>&1
}

# Both runs at once (each single-threaded), so neither waits for the other.
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
train simsiam configs/baselines/simsiam_resnet18_4xb128-coslr-400e_cifar10.py &
train ssql configs/ssql/ssql-simsiam_resnet18_4xb128-coslr-400e_cifar10.py &
wait
unset OMP_NUM_THREADS MKL_NUM_THREADS

cp "$WORK/simsiam/epoch_$EPOCHS.pth" "$WORK/simsiam_r18w8_cifar10.pth"
cp "$WORK/ssql/epoch_$EPOCHS.pth" "$WORK/ssql-simsiam_r18w8_cifar10.pth"
"$PYTHON" tools/bit_sweep.py \
    "$WORK/simsiam_r18w8_cifar10.pth" "$WORK/ssql-simsiam_r18w8_cifar10.pth" \
    --data "$DATA" --knn --linear \
    --out "$WORK/sweep" 2>&1 | tee "$WORK/sweep.log"
sha256sum "$WORK"/*_r18w8_cifar10.pth | tee "$WORK/sha256.txt"
