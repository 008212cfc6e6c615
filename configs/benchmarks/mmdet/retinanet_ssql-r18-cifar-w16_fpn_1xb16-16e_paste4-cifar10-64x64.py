# The CPU detection benchmark of
# retinanet_ssql-r18-cifar-w16_fpn_1xb16-8e_paste4-cifar10-64x64.py with twice
# the schedule: at 8 epochs the classification loss of some fine-tuning
# seeds stalls and their boxes keep guessed classes.
_base_ = './retinanet_ssql-r18-cifar-w16_fpn_1xb16-8e_paste4-cifar10-64x64.py'

max_epochs = 16

train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True,
         begin=0, end=max_epochs, convert_to_iter_based=True)
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
