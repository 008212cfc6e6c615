# SGD lr 0.05 for batch 512, momentum 0.9, wd 5e-4, cosine to 0, no warm-up.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.05, weight_decay=5e-4, momentum=0.9))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=400, eta_min=0., by_epoch=True,
         begin=0, end=400, convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=400)
