# Short entry point: SSQL-SimSiam ResNet-50 on ImageNet-1k (paper settings).
# Expects ImageNet under data/imagenet/ (meta/train.txt + train/), or pass
# --cfg-options train_dataloader.dataset.data_root=PATH.
_base_ = './ssql/ssql-simsiam_resnet50_8xb32-coslr-100e_in1k.py'
