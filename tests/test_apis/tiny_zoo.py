"""The tiny model of the model-zoo tests: its config and name."""
from pathlib import Path

import torch

TINY_CONFIG = """
model = dict(
    type='SimSiam',
    backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=8,
                  base_channels=8),
    neck=dict(type='NonLinearNeck', in_channels=64, hid_channels=32,
              out_channels=32, num_layers=3, with_last_bn_affine=False,
              with_avg_pool=True),
    head=dict(type='LatentPredictHead',
              loss=dict(type='CosineSimilarityLoss'),
              predictor=dict(type='NonLinearNeck', in_channels=32,
                             hid_channels=16, out_channels=32,
                             with_avg_pool=False, with_last_bn=False,
                             with_last_bias=True)))
"""
TINY_NAME = 'ssql-simsiam_tiny_cifar10'


def build_tiny_model(config: Path) -> torch.nn.Module:
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(Config.fromfile(str(config)).model)
