# Linear evaluation of a self-supervised CIFAR ResNet-18 at 4-bit weights and
# 4-bit activations (the SSQL paper's CIFAR protocol): frozen backbone whose
# activation ranges are calibrated once on training images in float, a float
# linear classifier trained on its quantized features, tested at the same bits.
# 100 epochs, batch 512, SGD lr 30, no weight decay, steps at 60 and 80;
# RandomResizedCrop(32, 0.8-1) + flip; test resize 36 + centre crop 32.
#
# Other bit-widths: --cfg-options model.backbone.w_bits=W model.backbone.a_bits=A
# (0 = float). The pretrained checkpoint:
# --cfg-options model.backbone.init_cfg.checkpoint=PATH
# Data: CIFAR-10 as JPEG class folders, data_root/{train,test}/<class>/*.jpg:
# --cfg-options train_dataloader.dataset.data_root=DIR \
#     val_dataloader.dataset.data_root=DIR test_dataloader.dataset.data_root=DIR
_base_ = [
    'mmpretrain::_base_/models/resnet18_cifar.py',
    'mmpretrain::_base_/datasets/cifar10_bs16.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['ssql_mm'], allow_failed_imports=False)

w_bits = 4
a_bits = 4
checkpoint = ('work_dirs/ssql-simsiam_resnet18_4xb128-coslr-400e_cifar10/'
              'epoch_400.pth')
data_root = 'data/cifar10'

model = dict(
    backbone=dict(
        type='QuantResNet_CIFAR',
        w_bits=w_bits,
        a_bits=a_bits,
        placement='integer',
        frozen_stages=4,
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    head=dict(init_cfg=dict(type='Normal', layer='Linear', std=0.01)))

# Images are decoded from JPEG (BGR); the pretraining used the same mean/std.
data_preprocessor = dict(to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=32,
        crop_ratio_range=(0.8, 1.),
        backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=36, edge='short', backend='pillow'),
    dict(type='CenterCrop', crop_size=32),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=512,
    num_workers=4,
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root=data_root,
        data_prefix='train',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=512,
    num_workers=4,
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root=data_root,
        data_prefix='test',
        pipeline=test_pipeline))
test_dataloader = val_dataloader

custom_hooks = [
    dict(type='QuantCalibrationHook', num_batches=10, dataloader='train'),
]

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=30., momentum=0.9, weight_decay=0.))
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[60, 80], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=10)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=512)

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
randomness = dict(seed=0)
