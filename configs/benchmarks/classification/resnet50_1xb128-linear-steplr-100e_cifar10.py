# Linear probe of a pretrained SSQL ResNet-50 on CIFAR10 at 224 x 224 (official
# SSQL recipe: 100 epochs, SGD lr 30, no weight decay, steps at 60/80):
# frozen backbone and BatchNorm statistics, float linear head; quantized
# features with --cfg-options model.backbone.w_bits=W model.backbone.a_bits=A.
_base_ = [
    './_base_/datasets/cifar10.py',
    './_base_/schedules/linear_sgd_steplr_100e.py',
]
model = dict(backbone=dict(frozen_stages=4, norm_eval=True))
auto_scale_lr = dict(base_batch_size=128)
