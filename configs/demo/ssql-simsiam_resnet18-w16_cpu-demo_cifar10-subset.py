# CPU demo: SSQL-SimSiam on the committed real CIFAR-10 subset
# (data/cifar10_subset, 3,000 training images) with a narrow CIFAR ResNet-18
# (16 base channels) for a few minutes. Same algorithm and hooks as the
# paper configs; only the sizes and the schedule are small.
_base_ = '../ssql/ssql-simsiam_resnet18_4xb128-coslr-400e_cifar10.py'

data_root = 'data/cifar10_subset'
max_epochs = 4
model = dict(
    backbone=dict(stem_channels=16, base_channels=16),
    neck=dict(in_channels=128, hid_channels=512, out_channels=512),
    head=dict(predictor=dict(in_channels=512, hid_channels=128, out_channels=512)))
train_dataloader = dict(
    batch_size=64,
    num_workers=2,
    dataset=dict(data_root=data_root))
optim_wrapper = dict(optimizer=dict(lr=0.05 * 64 / 512))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=0., by_epoch=True,
         begin=0, end=max_epochs, convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=5),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=5))
