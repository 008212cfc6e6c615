# MoCo v2 with a CIFAR ResNet-18 (3x3 stem, no max-pool), as the official
# SSQL-MoCo CIFAR recipe: projector 512 -> 2048 -> 256, a queue of 4096
# keys, temperature 0.2, key encoder an EMA with m = 0.999 (momentum=0.001).
# The CIFAR-10 normalisation comes from the SimSiam CIFAR base; the rest of
# its model is replaced.
_base_ = './simsiam_resnet18_cifar.py'

model = dict(
    _delete_=True,
    type='MoCo',
    queue_len=4096,
    feat_dim=256,
    momentum=0.001,
    data_preprocessor={{_base_.model.data_preprocessor}},
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        norm_cfg=dict(type='BN'),
        zero_init_residual=False),
    neck=dict(
        type='MoCoV2Neck',
        in_channels=512,
        hid_channels=2048,
        out_channels=256,
        with_avg_pool=True),
    head=dict(
        type='ContrastiveHead',
        loss=dict(type='CrossEntropyLoss'),
        temperature=0.2))
