# Downstream classification on CIFAR-10 with 10 % of the labels: full float
# fine-tuning of a CIFAR ResNet-18 (16 base channels, the CPU pretraining
# width), then post-training quantization at any bits (the paper's transfer
# protocol). Labelled set: per class the training images of rank 1000-1499
# in file-name order, 5,000 images disjoint from the model zoo's kNN bank
# (ranks 0-999); test on all 10,000 test images; calibration on 1,000 of the
# labelled images (test pipeline). 15 epochs of batch 128 (600
# iterations), SGD lr 0.05, momentum 0.9, weight decay 5e-4, lr x 0.1 at
# epochs 9 and 12; RandomCrop(32, padding 4) + flip. Without --pretrained
# (tools/benchmarks/transfer.py) the backbone starts from random weights:
# the floor a pretrained backbone must beat.
_base_ = ['./_base_/default_transfer.py']

data_root = 'data/cifar10'
labelled = (1000, 1500)
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
        init_cfg=None),
    head=dict(num_classes=num_classes, in_channels=128, topk=(1, )))
# CIFAR10InMemory serves RGB; normalised with the CIFAR-10 statistics.
data_preprocessor = dict(
    num_classes=num_classes,
    mean=[125.307, 122.961, 113.8575],
    std=[51.5865, 50.847, 51.255],
    to_rgb=False)
train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]
_dataset = dict(type='CIFAR10InMemory', data_root=data_root,
                cache_dir='data/cache/cifar10_arrays')
train_dataloader = dict(
    batch_size=128,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(_dataset, split='train', per_class_range=labelled,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=500,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(_dataset, split='test', pipeline=test_pipeline))
test_dataloader = val_dataloader
calib_dataloader = dict(
    num_workers=0,
    dataset=dict(_dataset, split='train', per_class_range=labelled,
                 pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4))
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[9, 12], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=15, val_interval=15)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=15, max_keep_ckpts=1,
                    save_last=True))
auto_scale_lr = dict(base_batch_size=128)
