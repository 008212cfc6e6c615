# The CPU-sized reproduction run of tools/benchmarks/repro_cifar10.sh as a
# config: CIFAR ResNet-18 with 8 stem/base channels, projector 3 x 512,
# predictor 512 -> 128 -> 512, 4 epochs of batch 128 on the first 500
# training images per class (data/cache/cifar10_500pc, made by the script).
_base_ = './ssql-simsiam_resnet18_4xb128-coslr-400e_cifar10.py'

data_root = 'data/cache/cifar10_500pc'
max_epochs = 4
width = 8
model = dict(
    backbone=dict(stem_channels=width, base_channels=width),
    neck=dict(in_channels=width * 8, hid_channels=512, out_channels=512),
    head=dict(predictor=dict(in_channels=512, hid_channels=128, out_channels=512)))
train_dataloader = dict(batch_size=128, num_workers=1, dataset=dict(data_root=data_root))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=0., by_epoch=True,
         begin=0, end=max_epochs, convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
default_hooks = dict(logger=dict(interval=5),
                     checkpoint=dict(interval=max_epochs))
randomness = dict(seed=0)
