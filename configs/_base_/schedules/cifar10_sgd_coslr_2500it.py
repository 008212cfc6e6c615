# Schedule and runtime of the CPU reproduction configs: 2,500 iterations,
# SGD lr 0.05 x 128 / 256, momentum 0.9, wd 5e-4, cosine to 0, no warm-up;
# a checkpoint every 500 iterations (the recipe resumes from it).
_base_ = 'mmpretrain::_base_/default_runtime.py'

max_iters = 2500
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.05 * 128 / 256, weight_decay=5e-4,
                   momentum=0.9))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_iters, eta_min=0.,
         by_epoch=False, begin=0, end=max_iters)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=500,
                    max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
auto_scale_lr = dict(base_batch_size=256)
