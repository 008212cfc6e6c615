# SimSiam with a CIFAR ResNet-18 (3x3 stem, no max-pool): projector of three
# 2048-d layers ending in an affine-free BN, predictor 2048 -> 2048 -> 2048.
# Its data_preprocessor holds the configs' one copy of the CIFAR-10
# normalisation (ssql_mm.datasets.CIFAR10_MEAN / CIFAR10_STD); other CIFAR-10
# configs take it from here.
model = dict(
    type='SimSiam',
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[125.307, 122.961, 113.8575],
        std=[51.5865, 50.847, 51.255],
        to_rgb=True),
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        norm_cfg=dict(type='BN'),
        zero_init_residual=False),
    neck=dict(
        type='NonLinearNeck',
        in_channels=512,
        hid_channels=2048,
        out_channels=2048,
        num_layers=3,
        with_last_bn_affine=False,
        with_avg_pool=True),
    head=dict(
        type='LatentPredictHead',
        loss=dict(type='CosineSimilarityLoss'),
        predictor=dict(
            type='NonLinearNeck',
            in_channels=2048,
            hid_channels=2048,
            out_channels=2048,
            with_avg_pool=False,
            with_last_bn=False,
            with_last_bias=True)))
