# Official SSQL fine-tuning schedule: 50 epochs, SGD lr 0.001 (batch 64 per
# GPU), momentum 0.9, weight decay 1e-4, lr x 0.1 at epochs 30 and 40.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.001, momentum=0.9, weight_decay=1e-4))
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[30, 40], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=50, val_interval=10)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=64)
