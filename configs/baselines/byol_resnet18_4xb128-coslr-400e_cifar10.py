# BYOL baseline for the SSQL-BYOL CIFAR-10 config: identical data, model,
# schedule and seed; only the algorithm differs. Optimiser as the official
# SSQL-BYOL CIFAR recipe (batch 512, SGD lr 0.05, momentum 0.9, wd 5e-4,
# cosine to 0, 400 epochs).
_base_ = [
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/datasets/cifar10_simsiam.py',
    '../_base_/models/byol_resnet18_cifar.py',
    '../_base_/schedules/cifar10_sgd_coslr_400e.py',
]
custom_imports = dict(imports=['ssql_mm'], allow_failed_imports=False)
train_dataloader = dict(
    collate_fn=dict(_delete_=True, type='default_collate'))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=50, max_keep_ckpts=3))
env_cfg = dict(dist_cfg=dict(backend='nccl'))
randomness = dict(seed=0)
auto_scale_lr = dict(base_batch_size=512)
