# MoCo v2 baseline of the CPU reproduction, set up as the SimSiam one
# (simsiam_resnet18-w16_1xb128-coslr-2500it_cifar10.py) with MoCo v2 as the
# algorithm: CIFAR ResNet-18 at 16 base channels (128-d features),
# projector 128 -> 512 -> 128, a queue of 4096 keys, temperature 0.2, key
# encoder an EMA with m = 0.999, 2,500 iterations of batch 128 on all
# 50,000 training images, SGD lr 0.3 x 128 / 512 (the official CIFAR lr
# for batch 512), momentum 0.9, wd 1e-4, cosine to 0. Views are made
# batched in the data preprocessor, channels-last.
_base_ = [
    '../_base_/datasets/cifar10_in_memory.py',
    '../_base_/models/mocov2_resnet18_cifar.py',
    '../_base_/schedules/cifar10_sgd_coslr_2500it.py',
]
custom_imports = dict(imports=['ssql_mm'], allow_failed_imports=False)
width = 16
model = dict(
    feat_dim=128,
    data_preprocessor=dict(
        _delete_=True,
        type='BatchViewPreprocessor',
        mean={{_base_.model.data_preprocessor.mean}},
        std={{_base_.model.data_preprocessor.std}},
        crop_size=32,
        crop_scale=(0.2, 1.0),
        channels_last=True),
    backbone=dict(stem_channels=width, base_channels=width),
    neck=dict(in_channels=width * 8, hid_channels=512, out_channels=128))
optim_wrapper = dict(optimizer=dict(lr=0.3 * 128 / 512, weight_decay=1e-4))
auto_scale_lr = dict(base_batch_size=512)
