#!/usr/bin/env bash
# The reproduction at the paper's width on one GPU, sized for about 8 minutes
# of training: full-width CIFAR ResNet-18 (64 channels), projector 3 x 2048,
# predictor 2048 -> 2048 -> 2048, batch 512, SGD lr 0.05, cosine, SimSiam and
# SSQL-SimSiam one after the other (seed 0), then the same bit sweep as the
# CPU recipe. The training set stays decoded in memory and the views are made
# on the GPU by BatchViewPreprocessor. ITERS (default 1200, about 12 epochs)
# sets the length; measure one short run first if your card is slower.
#
# Usage: bash tools/benchmarks/repro_cifar10_gpu.sh [ARCHIVE_DIR]
set -euo pipefail
DATA=${1:-../shared/data/cifar10}
PYTHON=${PYTHON:-python}
exec "$PYTHON" tools/benchmarks/repro_cifar10.py --data "$DATA" \
    --work "${WORK:-work_dirs/repro_cifar10_gpu}" --seeds 0 \
    --iters "${ITERS:-1200}" --width 64 --head-dim 2048 --pred-hidden 2048 \
    --batch-size 512 --jobs 1 --threads "${THREADS:-8}"
