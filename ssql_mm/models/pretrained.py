"""A checkpoint's backbone, rebuilt at a bit setting and calibrated.

The one place where the bit sweep, the ONNX exporter, the mixed-precision
search and ``get_model`` turn a checkpoint into a quantized backbone. The
architecture comes from a config: the pretraining config given explicitly,
or the config text MMEngine stores in every checkpoint it writes
(``meta['cfg']``). The weights are the checkpoint's ``backbone.*`` entries.
"""
import copy
import os.path as osp
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple, Union

import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS
from torch import nn

from ssql_mm.checkpoint import (CheckpointError, CheckpointMismatchError,
                                check_backbone_state, check_finite_state,
                                read_checkpoint, select_prefix,
                                unwrap_state_dict)
from ssql_mm.datasets import CIFAR10_MEAN, CIFAR10_STD, normalized_batches
from ssql_mm.quantization import calibrate
from ssql_mm.quantization.ptq import PTQSpec
from .backbones import DEFAULT_PLACEMENT, check_placement, quant_twin
from .bit_setting import BitSetting

__all__ = [
    'CalibrationOptions', 'PretrainedBackbone', 'load_pretrained',
    'recorded_placement', 'calibrate_backbone', 'pooled_features'
]

PREFIX = 'backbone.'
# Normalisation used when the config has no data preprocessor (CIFAR-10).
DEFAULT_MEAN = CIFAR10_MEAN
DEFAULT_STD = CIFAR10_STD
# Arguments of the stored config that a bit setting replaces.
_SETTING_KEYS = ('init_cfg', 'frozen_stages', 'w_bits', 'a_bits', 'mixed',
                 'placement')


@dataclass
class CalibrationOptions:
    """How activation ranges are measured, and what runs after them.

    Args:
        num_batches (int): Batches to calibrate on. Defaults to 10.
        batch_size (int): Images per batch. Defaults to 256.
        seed (int): Seed of the random draw of images. Defaults to 0.
        observer (str | dict): How ranges are found (see
            ``ssql_mm.quantization.observer_config``). Defaults to 'minmax'.
        ptq (str | dict, optional): A post-training quantization method run
            on the same batches once the ranges are frozen, e.g.
            ``'brecq:iters=500'`` (see ``ssql_mm.quantization.ptq``); it
            bakes its result into the model. Defaults to None (none).
    """
    num_batches: int = 10
    batch_size: int = 256
    seed: int = 0
    observer: Union[str, dict] = 'minmax'
    ptq: Optional[PTQSpec] = None


def calibrate_backbone(model: nn.Module,
                       images: torch.Tensor,
                       mean: Tuple[float, ...],
                       std: Tuple[float, ...],
                       batch_size: int = 256,
                       num_batches: int = 10,
                       seed: int = 0,
                       observer: Union[str, dict] = 'minmax',
                       ptq: Optional[PTQSpec] = None) -> int:
    """Calibrate activation ranges on randomly drawn uint8 images, then
    optionally run a post-training quantization method on the same batches.

    Args:
        model (nn.Module): A quantized backbone.
        images (Tensor): uint8 ``(N, 3, H, W)`` images.
        mean (Sequence[float]): Per-channel mean, 0-255 scale.
        std (Sequence[float]): Per-channel std, 0-255 scale.
        batch_size (int): Images per batch. Defaults to 256.
        num_batches (int): Batches to calibrate on. Defaults to 10.
        seed (int): Seed of the draw. Defaults to 0.
        observer (str | dict): How ranges are found (see
            ``ssql_mm.quantization.observer_config``). Defaults to 'minmax'.
        ptq (str | dict, optional): Reconstruction method (``'adaround'``,
            ``'brecq'``, ``'qdrop'``, with arguments as
            ``'brecq:iters=500'``); its learned rounding and steps are
            written into the model. Defaults to None.

    Returns:
        int: Batches seen.
    """
    device = next(model.parameters()).device
    order = torch.randperm(
        len(images), generator=torch.Generator().manual_seed(seed))
    batches = normalized_batches(images, mean, std, batch_size, device, order)
    return calibrate(model, batches, num_batches, observer=observer, ptq=ptq)


def pooled_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The globally average-pooled last output of a backbone.

    Args:
        model (nn.Module): A backbone (a tuple of stage outputs) or any
            module returning a feature map or a vector.
        x (Tensor): Its input batch.

    Returns:
        Tensor: ``(B, D)`` features.
    """
    out = model(x)
    out = out[-1] if isinstance(out, (tuple, list)) else out
    return out.mean(dim=(2, 3)) if out.dim() == 4 else out.flatten(1)


def _fit_error(path: str, err: RuntimeError) -> CheckpointMismatchError:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    detail = ' '.join(lines[1:3])[:300]
    return CheckpointMismatchError(
        f'Checkpoint {path} does not fit the backbone its config describes '
        f'({detail}); pass the matching --config or another checkpoint.')


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
            (or calibrated) with, :data:`DEFAULT_PLACEMENT` for a float
            model; the default of :meth:`build`.
        path (str): The checkpoint file, for messages. Defaults to ''
            (``name``).
    """
    name: str
    backbone_cfg: dict
    state_dict: Dict[str, torch.Tensor]
    mean: Tuple[float, ...] = DEFAULT_MEAN
    std: Tuple[float, ...] = DEFAULT_STD
    placement: str = DEFAULT_PLACEMENT
    path: str = ''

    def build(self, setting: BitSetting,
              placement: Optional[str] = None) -> nn.Module:
        """The quantized backbone at ``setting`` with the checkpoint's weights.

        The last stage is the only output; the model is in eval mode and
        its quantizers still need calibration unless ``setting`` is float.

        Args:
            setting (BitSetting): Uniform or per-layer bit-widths.
            placement (str, optional): Quantizer placement
                (``'inputs'``, ``'paper'``, ``'integer'``). Defaults to None:
                :attr:`placement`.

        Returns:
            nn.Module: The backbone.
        """
        cfg = copy.deepcopy(self.backbone_cfg)
        cls = quant_twin(cfg.pop('type'))
        for key in _SETTING_KEYS:
            cfg.pop(key, None)
        cfg['out_indices'] = (cfg.get('num_stages', 4) - 1, )
        model = cls(**cfg, w_bits=setting.w_bits, a_bits=setting.a_bits,
                    mixed=setting if setting.is_mixed else None,
                    placement=check_placement(placement or self.placement))
        self._load(model, strict=True)
        return model

    def build_configured(self) -> nn.Module:
        """The backbone exactly as its config sets it (bits, outputs, frozen
        ranges): the backbone of a detector or segmenter.

        Returns:
            nn.Module: The backbone in eval mode with the checkpoint's
            weights and frozen activation ranges (when it has them).
        """
        cfg = copy.deepcopy(self.backbone_cfg)
        cfg.pop('init_cfg', None)
        model = MODELS.build(cfg)
        check_backbone_state(model, self.state_dict,
                             f"Checkpoint '{self.path or self.name}'")
        self._load(model, strict=False)
        return model

    def calibrate(self, model: nn.Module, images: torch.Tensor,
                  options: Optional[CalibrationOptions] = None) -> int:
        """Calibrate ``model`` on uint8 images, normalised as the checkpoint
        was trained.

        Args:
            model (nn.Module): A backbone from :meth:`build`.
            images (Tensor): uint8 ``(N, 3, H, W)`` images.
            options (CalibrationOptions, optional): Defaults to None
                (defaults).

        Returns:
            int: Batches seen.
        """
        options = options or CalibrationOptions()
        return calibrate_backbone(model, images, self.mean, self.std,
                                  options.batch_size, options.num_batches,
                                  options.seed, options.observer,
                                  options.ptq)

    def at_setting(self,
                   setting: BitSetting,
                   images: Optional[torch.Tensor] = None,
                   options: Optional[CalibrationOptions] = None,
                   placement: Optional[str] = None,
                   device: Union[None, str, torch.device] = None
                   ) -> nn.Module:
        """:meth:`build`, moved to ``device`` and, when ``images`` are given
        and something is quantized, :meth:`calibrate` d.

        Args:
            setting (BitSetting): Uniform or per-layer bit-widths.
            images (Tensor, optional): uint8 calibration images. Defaults to
                None (no calibration: the checkpoint's frozen ranges, if it
                has any).
            options (CalibrationOptions, optional): Calibration options.
                Defaults to None (defaults).
            placement (str, optional): See :meth:`build`. Defaults to None.
            device (str | torch.device, optional): Defaults to None (cpu).

        Returns:
            nn.Module: The backbone, eval mode, last stage only.
        """
        model = self.build(setting, placement)
        if device is not None:
            model = model.to(device)
        if images is not None and not setting.is_float:
            self.calibrate(model, images, options)
        return model

    def _load(self, model: nn.Module, strict: bool) -> None:
        try:
            model.load_state_dict(self.state_dict, strict=strict)
        except CheckpointError:
            raise
        except RuntimeError as err:
            raise _fit_error(self.path or self.name, err) from None
        model.eval()  # mmpretrain's ResNet.train() does not return self


def _config_of(ckpt: Dict[str, Any], path: str,
               config: Union[None, str, Config]) -> Config:
    if isinstance(config, Config):
        return config
    if config is not None:
        return Config.fromfile(config)
    text = ckpt.get('meta', {}).get('cfg') if isinstance(
        ckpt.get('meta'), dict) else None
    if not text:
        raise ValueError(
            f'Checkpoint {path} stores no config (meta["cfg"]); pass the '
            'pretraining config with --config.')
    return Config.fromstring(text, '.py')


def recorded_placement(model_cfg: dict) -> str:
    """The quantizer placement a model config trains (or calibrates) with.

    ``backbone.placement`` or ``quant_cfg.placement`` when set. A quantized
    config without one (SSQL's ``quant_cfg``, a ``Quant*`` backbone) was
    built with :data:`LEGACY_PLACEMENT`, as the model itself is; a float
    model is evaluated with :data:`DEFAULT_PLACEMENT`.

    Args:
        model_cfg (dict): The ``model`` part of a config.

    Returns:
        str: The placement.
    """
    backbone_cfg = model_cfg.get('backbone') or {}
    quant_cfg = model_cfg.get('quant_cfg')
    placement = backbone_cfg.get('placement') or (quant_cfg or {}).get(
        'placement')
    quantized = quant_cfg is not None or str(backbone_cfg.get(
        'type', '')).split('.')[-1].startswith('Quant')
    return check_placement(placement or (None if quantized else
                                         DEFAULT_PLACEMENT))


def load_pretrained(path: str,
                    config: Union[None, str, Config] = None
                    ) -> PretrainedBackbone:
    """Read a checkpoint and find its backbone architecture and weights.

    Args:
        path (str): An MMEngine checkpoint of a model with a ``backbone``
            (SSQL-SimSiam, SimSiam, an image classifier, ...), or a bare
            state dict with ``backbone.*`` keys.
        config (str | Config, optional): The pretraining config (file or
            loaded). Defaults to None: use the config stored in the
            checkpoint.

    Returns:
        PretrainedBackbone: The backbone description.

    Raises:
        CorruptCheckpointError: A backbone weight is NaN or infinite.
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
    check_finite_state(weights, path, PREFIX)  # NaN in, NaN features out
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
    placement = recorded_placement(model_cfg)
    return PretrainedBackbone(
        name, backbone_cfg.to_dict() if hasattr(backbone_cfg, 'to_dict') else
        dict(backbone_cfg), weights, mean, std, placement, path)
