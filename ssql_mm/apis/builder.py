"""Build a zoo model from its config and load its weights (or its backbone
at a bit setting)."""
import os
from typing import Optional, Union

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.utils import import_modules_from_strings
from mmpretrain.registry import MODELS

from ssql_mm.checkpoint import (read_checkpoint, select_prefix,
                                unwrap_state_dict)
from ssql_mm.models.bit_setting import BitSetting, parse_bit_setting
from ssql_mm.models.pretrained import load_pretrained
from .download import download_checkpoint
from .errors import ModelZooError
from .model_index import get_model_entry

__all__ = ['get_model']

BACKBONE = 'backbone.'

PathLike = Union[str, os.PathLike]


def get_model(name: str,
              pretrained: Union[bool, str] = True,
              device: Union[str, torch.device] = 'cpu',
              index: Optional[PathLike] = None,
              base_url: Optional[str] = None,
              bits: Union[None, str, BitSetting] = None,
              placement: Optional[str] = None) -> torch.nn.Module:
    """Build a zoo model with mmpretrain's ``MODELS`` and load its weights.

    Args:
        name (str): Model name (see :func:`list_models`).
        pretrained (bool | str): True downloads (or reuses the cached)
            published checkpoint; a path or URL loads that file instead;
            False keeps the initial weights. Defaults to True.
        device (str | torch.device): Where to put the model. Defaults to
            ``'cpu'``.
        index (str | PathLike, optional): Model index to read. Defaults to
            None, the package's ``model-index.yml``.
        base_url (str, optional): Mirror of the checkpoints. Defaults to
            None (``$SSQL_MM_BASE_URL`` or the published URL).
        bits (str | BitSetting, optional): Return the checkpoint's backbone
            rebuilt quantized at this setting (``'4/4'``, ``'mixed:FILE'``;
            see ``ssql_mm.models.pretrained``), last stage only; calibrate
            it (``PretrainedBackbone.calibrate`` or
            ``ssql_mm.quantization.calibrate``) before a quantized forward.
            Defaults to None: the model as its config builds it.
        placement (str, optional): Quantizer placement with ``bits``.
            Defaults to None (the checkpoint's).

    Returns:
        nn.Module: The model in eval mode; the weights load strictly. A
        checkpoint holding only ``backbone.*`` weights (as the zoo's
        CPU-reproduction entries do) gives the config's backbone alone.
    """
    entry = get_model_entry(name, index)
    if entry.config_path is None or not os.path.isfile(entry.config_path):
        raise ModelZooError(f'Config of {name} not found: {entry.config}.')
    cfg = Config.fromfile(entry.config_path)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    model_cfg = cfg.model.copy()
    if 'data_preprocessor' in cfg and 'data_preprocessor' not in model_cfg:
        model_cfg.data_preprocessor = cfg.data_preprocessor
    if bits is not None and not pretrained:
        raise ModelZooError(
            f'get_model({name!r}, bits=...) rebuilds the backbone of the '
            'checkpoint; pass pretrained=True (or a checkpoint path).')
    state = None
    if pretrained:
        path = pretrained if isinstance(pretrained, str) else \
            download_checkpoint(name, index=index, base_url=base_url)
        if '://' in path:
            path = download_checkpoint(path, index=index)
        if bits is not None:
            setting = bits if isinstance(bits, BitSetting) else \
                parse_bit_setting(bits)
            backbone = load_pretrained(path, cfg).build(setting, placement)
            return backbone.to(device)
        state = unwrap_state_dict(read_checkpoint(path), f"'{path}'")
        if state and all(k.startswith(BACKBONE) for k in state):
            model_cfg = model_cfg.backbone  # the file is a backbone
            state = select_prefix(state, BACKBONE)
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'mmpretrain')):
        model = MODELS.build(model_cfg)
    if state is not None:
        model.load_state_dict(state, strict=True)
    model = model.to(device)
    model.eval()  # mmpretrain's ResNet.train() does not return the module
    return model
