# Shared base of the transfer benchmarks (SSQL's fine-grained suite): an
# mmpretrain image classifier on a pretrained SSQL / SimSiam ResNet-50 whose
# convs are quantized twins (QuantResNet). At w_bits = a_bits = 0 (the
# default) the backbone is the float ResNet-50, bit for bit, and the
# calibration hook measures nothing; at other bits (set on model.backbone)
# the hook calibrates activation ranges on 1,000 training images with the
# test pipeline before training (QAT) or testing (PTQ).
#
# Official SSQL transfer recipe (configs/<dataset>/resnet{18,50}_*.yaml):
# 224 x 224 inputs, RandomResizedCrop(224, scale 0.08-1, bilinear) +
# horizontal flip; test: resize to 256 x 256, centre crop 224; ImageNet
# mean/std; calibration on 1,000 training images. The dataset bases in
# _base_/datasets/ add the data, the schedules in _base_/schedules/ the
# fine-tune or linear-probe optimisation.
_base_ = ['mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['ssql_mm'], allow_failed_imports=False)

checkpoint = ('work_dirs/ssql-simsiam_resnet50_8xb32-coslr-100e_in1k/'
              'epoch_100.pth')
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='QuantResNet',
        depth=50,
        w_bits=0,
        a_bits=0,
        placement='integer',
        out_indices=(3, ),
        init_cfg=dict(
            type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=2048,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))

# Images are decoded as BGR; the network sees RGB normalised like ImageNet.
data_preprocessor = dict(
    num_classes=1000,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=224,
        crop_ratio_range=(0.08, 1.0),
        interpolation='bilinear',
        backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 256), interpolation='bilinear',
         backend='pillow'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
# 8 x 125 = 1,000 training images, drawn at random (runner seed), no
# augmentation: the official calibration set size.
calib_dataloader = dict(
    batch_size=125,
    num_workers=4,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator
# Calibration observer: 'minmax' (the paper's), 'ema', 'percentile', 'mse',
# 'kl'; e.g. --cfg-options custom_hooks.0.observer=mse
custom_hooks = [
    dict(type='QuantCalibrationHook', num_batches=8, dataloader='calib',
         observer='minmax'),
]

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=1,
                    save_last=True))
randomness = dict(seed=100)  # the official recipe's seed
