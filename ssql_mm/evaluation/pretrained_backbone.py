"""A checkpoint's backbone, rebuilt quantized at any bit-width.

The architecture comes from a config: the pretraining config given
explicitly, or the config text MMEngine stores in every checkpoint it writes
(``meta['cfg']``). The weights are the checkpoint's ``backbone.*`` entries.
"""
import copy
import os.path as osp
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

from ssql_mm.checkpoint import (CheckpointMismatchError, read_checkpoint,
                                select_prefix, unwrap_state_dict)
from ssql_mm.datasets import CIFAR10_MEAN, CIFAR10_STD
from ssql_mm.models.backbones import (DEFAULT_PLACEMENT, check_placement,
                                     quant_twin)
from .bit_settings import BitSetting

__all__ = ['PretrainedBackbone', 'load_pretrained']

PREFIX = 'backbone.'
# Normalisation used when the config has no data preprocessor (CIFAR-10).
DEFAULT_MEAN = CIFAR10_MEAN
DEFAULT_STD = CIFAR10_STD


@dataclass
class PretrainedBackbone:
    """Everything needed to rebuild a checkpoint's backbone.

    Args:
        name (str): Short name (the checkpoint file name without suffix).
        backbone_cfg (dict): The float backbone config.
        state_dict (dict): Backbone weights, without the ``backbone.`` prefix.
        mean (tuple[float]): Per-channel mean on the 0-255 scale.
        std (tuple[float]): Per-channel std on the 0-255 scale.
        placement (str): The quantizer placement the checkpoint was trained
            (or calibrated) with; the default of :meth:`build`.
    """
    name: str
    backbone_cfg: dict
    state_dict: Dict[str, torch.Tensor]
    mean: Tuple[float, ...] = DEFAULT_MEAN
    std: Tuple[float, ...] = DEFAULT_STD
    placement: str = DEFAULT_PLACEMENT

    def build(self, setting: BitSetting,
              placement: Optional[str] = None) -> torch.nn.Module:
        """The quantized backbone at ``setting`` with the checkpoint's weights.

        The last stage is the only output; the model is in eval mode and
        its quantizers still need calibration unless ``setting`` is float.

        Args:
            setting (BitSetting): Bit-widths.
            placement (str, optional): Quantizer placement
                (``'inputs'``, ``'paper'``, ``'integer'``). Defaults to None:
                :attr:`placement`.

        Returns:
            nn.Module: The backbone.
        """
        cfg = copy.deepcopy(self.backbone_cfg)
        cfg['type'] = quant_twin(cfg['type'])
        for key in ('init_cfg', 'frozen_stages', 'w_bits', 'a_bits',
                    'placement'):
            cfg.pop(key, None)
        cfg['out_indices'] = (cfg.get('num_stages', 4) - 1, )
        model = MODELS.build(
            dict(cfg, w_bits=setting.w_bits, a_bits=setting.a_bits,
                 placement=check_placement(placement or self.placement)))
        model.load_state_dict(self.state_dict, strict=True)
        model.eval()  # mmpretrain's ResNet.train() does not return self
        return model


def _config_of(ckpt: Dict[str, Any], path: str,
               config: Optional[str]) -> Config:
    if config is not None:
        return Config.fromfile(config)
    text = ckpt.get('meta', {}).get('cfg') if isinstance(
        ckpt.get('meta'), dict) else None
    if not text:
        raise ValueError(
            f'Checkpoint {path} stores no config (meta["cfg"]); pass the '
            'pretraining config with --config.')
    return Config.fromstring(text, '.py')


def load_pretrained(path: str, config: Optional[str] = None) -> PretrainedBackbone:
    """Read a checkpoint and find its backbone architecture and weights.

    Args:
        path (str): An MMEngine checkpoint of a model with a ``backbone``
            (SSQL-SimSiam, SimSiam, an image classifier, ...), or a bare
            state dict with ``backbone.*`` keys.
        config (str, optional): The pretraining config file. Defaults to
            None: use the config stored in the checkpoint.

    Returns:
        PretrainedBackbone: The backbone description.
    """
    ckpt = read_checkpoint(path)
    try:
        weights = select_prefix(
            unwrap_state_dict(ckpt, f"'{path}'"), PREFIX, f"'{path}'",
            fix='Pass a checkpoint of a model with a backbone (SSQL, '
            'SimSiam, a classifier).')
    except CheckpointMismatchError as err:
        raise CheckpointMismatchError(
            f'Checkpoint {path} has no backbone weights: {err}') from None
    cfg = _config_of(ckpt, path, config)
    model_cfg = cfg.get('model', {})
    backbone_cfg = model_cfg.get('backbone') if model_cfg else None
    if not backbone_cfg:
        raise ValueError(f'The config of {path} has no model.backbone.')
    preprocessor = model_cfg.get('data_preprocessor') or cfg.get(
        'data_preprocessor') or {}
    mean = tuple(preprocessor.get('mean', DEFAULT_MEAN))
    std = tuple(preprocessor.get('std', DEFAULT_STD))
    name = osp.splitext(osp.basename(path))[0]
    quant_cfg = model_cfg.get('quant_cfg') or {}
    placement = check_placement(
        backbone_cfg.get('placement') or quant_cfg.get('placement'))
    return PretrainedBackbone(name, backbone_cfg.to_dict() if hasattr(
        backbone_cfg, 'to_dict') else dict(backbone_cfg), weights, mean, std,
                              placement)
