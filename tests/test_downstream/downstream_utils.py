"""Helpers shared by the downstream tests."""
import os.path as osp

from mmengine.config import Config
from mmengine.registry import init_default_scope
from torch import nn

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def config(path: str) -> Config:
    """Load a config of this repository by its path from the repo root."""
    return Config.fromfile(osp.join(REPO, path))


def build_model(cfg: Config, scope: str, part: str = None) -> nn.Module:
    """Build ``cfg.model`` (or its sub-config ``part``) with mmdet's or
    mmseg's registry, as the downstream runner would."""
    init_default_scope(scope)
    if scope == 'mmseg':
        from mmseg.registry import MODELS
    else:
        from mmdet.registry import MODELS
    return MODELS.build(cfg.model[part] if part else cfg.model)
