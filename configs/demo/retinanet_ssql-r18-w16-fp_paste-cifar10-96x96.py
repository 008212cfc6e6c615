# CPU demo, detection: RetinaNet on the paste dataset (real CIFAR-10 test
# images pasted onto backgrounds, tools/make_paste_dataset.py) with the
# narrow CIFAR ResNet-18 of the SSQL CPU pretraining demo, in float.
# Also the PTQ entry point (QuantCalibrationHook measures the ranges on the
# loaded weights): --cfg-options model.backbone.w_bits=4 model.backbone.a_bits=4
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['ssql_mm'], allow_failed_imports=False)

data_root = 'work_dirs/paste_cifar10/'
# Written by configs/demo/ssql-simsiam_resnet18-w16_cpu-demo_cifar10-subset.py
ssql_checkpoint = 'work_dirs/downstream/ssql_pretrain/epoch_4.pth'
classes = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog',
           'horse', 'ship', 'truck')
image_size = 96
max_epochs = 10

model = dict(
    data_preprocessor=dict(
        mean=[125.307, 122.961, 113.8575],
        std=[51.5865, 50.847, 51.255],
        pad_size_divisor=16),
    backbone=dict(
        _delete_=True,
        type='mmpretrain.QuantResNet_CIFAR',
        depth=18,
        stem_channels=16,
        base_channels=16,
        out_indices=(2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        w_bits=0,
        a_bits=0,
        placement='integer',
        init_cfg=dict(
            type='Pretrained', checkpoint=ssql_checkpoint,
            prefix='backbone.')),
    neck=dict(in_channels=[64, 128], out_channels=64, num_outs=3),
    bbox_head=dict(
        num_classes=len(classes),
        in_channels=64,
        feat_channels=64,
        stacked_convs=2,
        anchor_generator=dict(strides=[4, 8, 16])))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file='annotations/train.json',
        data_prefix=dict(img='images/train/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file='annotations/val.json',
        data_prefix=dict(img='images/val/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(
    _delete_=True,
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=10.))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True,
         begin=0, end=max_epochs, convert_to_iter_based=True)
]
auto_scale_lr = dict(enable=False)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_epochs))
custom_hooks = [
    dict(
        type='mmpretrain.QuantCalibrationHook',
        num_batches=4,
        dataloader='train')
]
