# CPU demo, segmentation: FCN on the paste dataset's label maps with the
# narrow CIFAR ResNet-18 of the SSQL CPU pretraining demo, in float. Output
# stride 4 (the CIFAR stem keeps the resolution; layer4 dilated instead of
# strided).
# Also the PTQ entry point (QuantCalibrationHook measures the ranges on the
# loaded weights): --cfg-options model.backbone.w_bits=4 model.backbone.a_bits=4
_base_ = [
    'mmseg::_base_/models/fcn_r50-d8.py', 'mmseg::_base_/default_runtime.py'
]

custom_imports = dict(imports=['ssql_mm'], allow_failed_imports=False)

data_root = 'work_dirs/paste_cifar10/'
# Written by configs/demo/ssql-simsiam_resnet18-w16_cpu-demo_cifar10-subset.py
ssql_checkpoint = 'work_dirs/downstream/ssql_pretrain/epoch_4.pth'
classes = ('background', 'airplane', 'automobile', 'bird', 'cat', 'deer',
           'dog', 'frog', 'horse', 'ship', 'truck')
image_size = 96
max_iters = 200
norm_cfg = dict(type='BN', requires_grad=True)

model = dict(
    pretrained=None,
    data_preprocessor=dict(
        mean=[125.307, 122.961, 113.8575],
        std=[51.5865, 50.847, 51.255],
        size=(image_size, image_size)),
    backbone=dict(
        _delete_=True,
        type='mmpretrain.QuantResNet_CIFAR',
        depth=18,
        stem_channels=16,
        base_channels=16,
        out_indices=(3, ),
        strides=(1, 2, 2, 1),
        dilations=(1, 1, 1, 2),
        norm_cfg=norm_cfg,
        norm_eval=False,
        w_bits=0,
        a_bits=0,
        placement='integer',
        init_cfg=dict(
            type='Pretrained', checkpoint=ssql_checkpoint,
            prefix='backbone.')),
    decode_head=dict(
        in_channels=128,
        in_index=0,
        channels=64,
        num_classes=len(classes),
        norm_cfg=norm_cfg,
        # Background covers ~80% of the pixels; without down-weighting it a
        # short schedule predicts background everywhere.
        loss_decode=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=1.0,
            class_weight=[0.1] + [1.0] * (len(classes) - 1))),
    auxiliary_head=None)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
dataset = dict(
    type='BaseSegDataset',
    data_root=data_root,
    metainfo=dict(classes=classes),
    img_suffix='.jpg',
    seg_map_suffix='.png',
    reduce_zero_label=False)
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        **dataset,
        data_prefix=dict(img_path='images/train', seg_map_path='seg/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        **dataset,
        data_prefix=dict(img_path='images/val', seg_map_path='seg/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', T_max=max_iters, by_epoch=False, begin=0,
         end=max_iters)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=max_iters),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
custom_hooks = [
    dict(
        type='mmpretrain.QuantCalibrationHook',
        num_batches=4,
        dataloader='train')
]
