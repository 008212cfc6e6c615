# CPU transfer demo: fine-tune a CIFAR ResNet-18 pretrained with SSQL (or
# SimSiam) on the committed CIFAR-10 subset (data/cifar10_subset: 300
# training and 100 test JPEG images per class), then PTQ at any bit-width.
# The recipe is the fine-tuning one of the transfer suite scaled to 32 x 32
# inputs and a short CPU run: 10 epochs of batch 64, SGD lr 0.005 (the
# official CIFAR lr 0.01 at batch 128, scaled to 64), momentum 0.9, weight
# decay 1e-4, lr x 0.1 at epochs 6 and 8 (the official 30/40 of 50 epochs);
# RandomCrop(32, padding 4) + flip (the crop the official CIFAR config
# offers instead of RandomResizedCrop at 224); test on the images as
# stored; calibration on 1,000 training images. The backbone width (16
# base channels) is that of the CPU pretraining configs; for a checkpoint
# of another width, tools/benchmarks/transfer.py --arch-from-checkpoint
# adopts the checkpoint's backbone.
_base_ = [
    './_base_/default_transfer.py',
    './_base_/schedules/finetune_sgd_steplr_50e.py',
]

data_root = 'data/cifar10_subset'
num_classes = 10
model = dict(
    backbone=dict(
        _delete_=True,
        type='QuantResNet_CIFAR',
        depth=18,
        stem_channels=16,
        base_channels=16,
        w_bits=0,
        a_bits=0,
        placement='integer',
        out_indices=(3, ),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='work_dirs/ssql-simsiam_resnet18-w16_cpu-demo/'
            'epoch_4.pth',
            prefix='backbone.')),
    head=dict(num_classes=num_classes, in_channels=128))
# JPEG class folders decode to BGR; the pretraining normalised RGB with the
# CIFAR-10 statistics.
data_preprocessor = dict(
    num_classes=num_classes,
    mean=[125.307, 122.961, 113.8575],
    std=[51.5865, 50.847, 51.255],
    to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    num_workers=2,
    dataset=dict(type='CustomDataset', data_root=data_root,
                 data_prefix='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=100,
    num_workers=2,
    dataset=dict(type='CustomDataset', data_root=data_root,
                 data_prefix='test', pipeline=test_pipeline))
test_dataloader = val_dataloader
calib_dataloader = dict(
    num_workers=2,
    dataset=dict(type='CustomDataset', data_root=data_root,
                 data_prefix='train', pipeline=test_pipeline))

optim_wrapper = dict(optimizer=dict(lr=0.005))
param_scheduler = dict(milestones=[6, 8])
train_cfg = dict(max_epochs=10, val_interval=10)
default_hooks = dict(logger=dict(type='LoggerHook', interval=10))
