"""From a checkpoint to a deployable ONNX model: build, calibrate, export.

Classification / SSL checkpoints are exported as a *feature model*: the
backbone at the chosen bits, global average pooling (output ``features``),
and optionally a float linear classifier (output ``logits``). Downstream
(mmdet / mmseg) backbones are exported as their config builds them: the
config's bits, overrides, frozen ranges and ``out_indices`` (one output per
stage, ``stage<i>``).
"""
import json
from dataclasses import replace
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.config import Config
from torch import nn

from ssql_mm.checkpoint import (CheckpointMismatchError, check_finite_state,
                                check_writable,
                                read_checkpoint, unwrap_state_dict,
                                write_checkpoint)
from ssql_mm.models.backbones import check_placement
from ssql_mm.models.bit_setting import BitSetting, parse_bit_setting
from ssql_mm.models.pretrained import (CalibrationOptions, PretrainedBackbone,
                                       load_pretrained)
from ssql_mm.quantization import ActivationFakeQuantize, observer_config
from ssql_mm.quantization.ptq import PTQSpec, build_ptq
from .bias_grid import snap_biases
from .encoding import MAX_EXPORT_BITS
from .qdq_export import DEFAULT_OPSET, ExportReport, export_qdq_model

__all__ = [
    'FeatureModel', 'parse_export_bits', 'require_ranges', 'load_linear_head',
    'build_backbone',
    'build_configured_backbone', 'export_checkpoint',
    'export_configured_backbone', 'save_calibrated'
]

HEAD_KEYS = ('head.fc.weight', 'head.fc.bias')


class FeatureModel(nn.Module):
    """Backbone -> last stage -> global average pool [-> linear head].

    Args:
        backbone (nn.Module): Returns a tuple of stage outputs.
        head (nn.Linear, optional): Classifier on the pooled features.
            Defaults to None.
    """

    def __init__(self, backbone: nn.Module,
                 head: Optional[nn.Linear] = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = head

    def forward(self, x: torch.Tensor):
        feats = torch.flatten(self.pool(self.backbone(x)[-1]), 1)
        if self.head is None:
            return feats
        return feats, self.head(feats)


def load_linear_head(path: str, in_features: int) -> nn.Linear:
    """The float linear classifier of an mmpretrain classifier checkpoint.

    Args:
        path (str): A checkpoint holding ``head.fc.weight`` and
            ``head.fc.bias`` (a ``LinearClsHead``, e.g. from the linear
            evaluation configs).
        in_features (int): Feature width of the backbone.

    Returns:
        nn.Linear: The classifier, in eval mode.

    Raises:
        CorruptCheckpointError: The head's weights are not finite.
    """
    state = unwrap_state_dict(read_checkpoint(path),
                              f"Head checkpoint '{path}'")
    missing = [k for k in HEAD_KEYS if k not in state]
    if missing:
        sample = ', '.join(list(map(str, state))[:5])
        raise CheckpointMismatchError(
            f'Head checkpoint {path} has no {missing} (keys look like: '
            f'{sample}); pass a linear-classifier checkpoint (mmpretrain '
            'LinearClsHead).')
    check_finite_state({k: state[k] for k in HEAD_KEYS}, path)
    weight, bias = state[HEAD_KEYS[0]], state[HEAD_KEYS[1]]
    if weight.dim() != 2 or weight.shape[1] != in_features:
        raise CheckpointMismatchError(
            f'Head {path} takes {weight.shape[-1]} features but the backbone '
            f'gives {in_features}; pass the head trained on this backbone.')
    head = nn.Linear(weight.shape[1], weight.shape[0])
    head.load_state_dict({'weight': weight.float(), 'bias': bias.float()})
    return head.eval()


def parse_export_bits(bits: Union[str, BitSetting]) -> BitSetting:
    """Parse ``'W/A'`` / ``'fp'`` / ``'mixed:FILE'`` and check the export
    supports every bit-width it names.

    Args:
        bits (str | BitSetting): The setting, e.g. ``'8/8'``, ``'4/4'``,
            ``'2/4'``, ``'mixed:bits.yml'``.

    Returns:
        BitSetting: The parsed setting.
    """
    setting = bits if isinstance(bits, BitSetting) else parse_bit_setting(
        bits)
    named = [('', 'weight', setting.w_bits),
             ('', 'activation', setting.a_bits)]
    named += [(f"layer '{layer.name}': ", side, value)
              for layer in setting.layers
              for side, value in (('weight', layer.w),
                                  ('activation', layer.a))]
    shown = setting.name if setting.is_mixed else repr(bits)
    for where, side, value in named:
        if value and value > MAX_EXPORT_BITS:
            raise ValueError(
                f'Bad bit setting {shown}: {where}{value}-bit {side}s '
                'cannot be exported (codes are '
                f'stored in 8-bit tensors); use 2-{MAX_EXPORT_BITS} bits or 0 '
                'for float.')
    return setting


def require_ranges(model: nn.Module, source: str) -> None:
    """Raise unless every active activation quantizer of ``model`` has a
    range.

    Args:
        model (nn.Module): A quantized model.
        source (str): Where the model's weights came from, for the message.
    """
    missing = [name for name, q in model.named_modules()
               if isinstance(q, ActivationFakeQuantize) and q.active
               and not q.has_range]
    if missing:
        raise ValueError(
            f'{source} holds no frozen activation ranges for {len(missing)} '
            f'quantizer(s) (e.g. {missing[0]!r}) and no calibration '
            'images were given: pass --calib-data, or a checkpoint written '
            'with --save-calibrated.')


def build_backbone(pretrained: PretrainedBackbone, setting: BitSetting,
                   path: str, placement: Optional[str] = None) -> nn.Module:
    """``pretrained.build(setting, placement)`` (kept for existing callers).

    Args:
        pretrained (PretrainedBackbone): From ``load_pretrained``.
        setting (BitSetting): Bit-widths.
        path (str): The checkpoint file, for the message when
            ``pretrained`` does not know it.
        placement (str, optional): Quantizer placement. Defaults to None
            (the checkpoint's).

    Returns:
        nn.Module: The backbone, eval mode, last stage only.
    """
    return replace(pretrained, path=pretrained.path or path).build(
        setting, placement)


def build_configured_backbone(pretrained: PretrainedBackbone,
                              path: str) -> nn.Module:
    """``pretrained.build_configured()``: the backbone exactly as its config
    sets it (kept for existing callers).

    Args:
        pretrained (PretrainedBackbone): From ``load_pretrained`` with the
            downstream config.
        path (str): The checkpoint file, for the message when
            ``pretrained`` does not know it.

    Returns:
        nn.Module: The backbone in eval mode with the checkpoint's weights
        and frozen activation ranges (when it has them).
    """
    return replace(pretrained, path=pretrained.path or path).build_configured()


def _calibration(batch_size: int, num_batches: int, seed: int,
                 observer: Union[str, dict] = 'minmax',
                 ptq: Optional[PTQSpec] = None) -> CalibrationOptions:
    return CalibrationOptions(num_batches, batch_size, seed, observer, ptq)


def _bits_text(w_bits: Optional[int], a_bits: Optional[int]) -> str:
    """``'W/A'`` as the tools take it (0 = float), ``'fp'`` when both float."""
    return BitSetting(w_bits, a_bits).base_text


def _setting_metadata(bits: Union[str, BitSetting],
                      setting: BitSetting) -> Dict[str, str]:
    if not setting.is_mixed:
        return {'ssql_mm.bits': setting.base_text}
    text = bits.strip() if isinstance(bits, str) else setting.name
    return {'ssql_mm.bits': text,
            'ssql_mm.bit_setting': json.dumps(setting.to_dict())}


def _metadata(pretrained: PretrainedBackbone, bits: Dict[str, str],
              outputs: Sequence[str], placement: str) -> Dict[str, str]:
    return {
        'ssql_mm.source': pretrained.name,
        **bits,
        'ssql_mm.mean': json.dumps(list(pretrained.mean)),
        'ssql_mm.std': json.dumps(list(pretrained.std)),
        'ssql_mm.outputs': json.dumps(list(outputs)),
        'ssql_mm.placement': placement,
    }


def _export(model: nn.Module, out: str, outputs: List[str], opset: int,
            metadata: Dict[str, str]) -> ExportReport:
    """Snap ``model``'s biases to their int32 grid (so it is the exact
    reference of the graph), then export it."""
    snapped = snap_biases(model)
    _, report = export_qdq_model(model, out, outputs, opset=opset,
                                 metadata=metadata)
    report.snapped_biases = snapped
    return report


def export_checkpoint(checkpoint: str,
                      out: str,
                      bits: Union[str, BitSetting] = '8/8',
                      head: Optional[str] = None,
                      calib_images: Optional[torch.Tensor] = None,
                      config: Optional[str] = None,
                      calib_batches: int = 10,
                      batch_size: int = 256,
                      seed: int = 0,
                      opset: int = DEFAULT_OPSET,
                      placement: Optional[str] = None,
                      save_calibrated_to: Optional[str] = None,
                      observer: Union[str, dict] = 'minmax',
                      ptq: Optional[PTQSpec] = None
                      ) -> Tuple[ExportReport, nn.Module]:
    """Export a checkpoint's backbone at ``bits`` as a QDQ feature model.

    Args:
        checkpoint (str): Any checkpoint ``load_pretrained`` reads (SSQL or
            float, with ``backbone.*`` weights and a config).
        out (str): The ``.onnx`` file to write.
        bits (str | BitSetting): ``'W/A'`` (e.g. ``'8/8'``, ``'4/4'``),
            ``'fp'`` or ``'mixed:FILE'`` (per-layer bits; each layer's codes
            lie in its own range). Defaults to '8/8'.
        head (str, optional): Linear-classifier checkpoint; adds a
            ``logits`` output. Defaults to None.
        calib_images (Tensor, optional): uint8 ``(N, 3, H, W)`` calibration
            images. Defaults to None: use the frozen ranges stored in the
            checkpoint (an error if it has none).
        config (str, optional): Pretraining config. Defaults to None (the
            one stored in the checkpoint).
        calib_batches (int): Calibration batches. Defaults to 10.
        batch_size (int): Calibration batch size. Defaults to 256.
        seed (int): Seed of the calibration draw. Defaults to 0.
        opset (int): ONNX opset. Defaults to 17.
        placement (str, optional): Quantizer placement around residual
            additions: ``'integer'`` gives the all-integer graph (every conv
            and addition an integer kernel), ``'paper'`` the official
            code's, ``'inputs'`` conv inputs only. Defaults to None (the
            checkpoint's training placement; 'integer' for a float one).
        save_calibrated_to (str, optional): Also save the calibrated
            backbone there (see :func:`save_calibrated`), the exact PyTorch
            reference of the exported model (its biases snapped to their
            int32 grid, see ``snap_biases``); with ``ptq`` it holds the
            reconstructed model, which exports again without calibration
            images. Defaults to None.
        observer (str | dict): How activation ranges are found on
            ``calib_images`` (see ``ssql_mm.quantization.observer_config``).
            Defaults to 'minmax'.
        ptq (str | dict, optional): A reconstruction run after the ranges
            are frozen, on the same batches: ``'adaround'``, ``'brecq'``,
            ``'qdrop'``, with arguments as ``'brecq:iters=500'`` (see
            ``ssql_mm.quantization.ptq``). Needs ``calib_images``. Defaults
            to None.

    Returns:
        tuple[ExportReport, nn.Module]: What was exported, and the
        calibrated PyTorch feature model it reproduces (biases snapped).
    """
    setting = parse_export_bits(bits)
    observer_config(observer)
    if ptq is not None:
        build_ptq(ptq)  # checks names and values before any heavy work
        if calib_images is None or setting.is_float:
            raise ValueError(
                f'PTQ method {ptq!r} reconstructs a quantized model from '
                'calibration images: give them (--calib-data) and a '
                "quantized bit setting (not 'fp').")
    for path in (out, save_calibrated_to):
        if path is not None:
            check_writable(path)
    pretrained = load_pretrained(checkpoint, config)
    placement = check_placement(placement or pretrained.placement)
    backbone = pretrained.at_setting(
        setting, calib_images,
        _calibration(batch_size, calib_batches, seed, observer, ptq),
        placement)
    require_ranges(backbone, f'Checkpoint {checkpoint}')
    model = FeatureModel(
        backbone, load_linear_head(head, backbone.feat_dim) if head else None)
    outputs = ['features'] + (['logits'] if head else [])
    report = _export(model, out, outputs, opset,
                     _metadata(pretrained, _setting_metadata(bits, setting),
                               outputs, placement))
    if save_calibrated_to is not None:
        save_calibrated(backbone, pretrained.backbone_cfg, pretrained.mean,
                        pretrained.std, save_calibrated_to)
    return report, model


def export_configured_backbone(config: str,
                               checkpoint: str,
                               out: str,
                               calib_images: Optional[torch.Tensor] = None,
                               calib_batches: int = 10,
                               batch_size: int = 8,
                               seed: int = 0,
                               opset: int = DEFAULT_OPSET
                               ) -> Tuple[ExportReport, nn.Module]:
    """Export a detector's / segmenter's backbone as its config sets it.

    Args:
        config (str): The mmdet / mmseg (or mmpretrain) config.
        checkpoint (str): A checkpoint of that model (``backbone.*``
            weights, with frozen ranges if it was calibrated).
        out (str): The ``.onnx`` file to write.
        calib_images (Tensor, optional): uint8 images to calibrate on.
            Defaults to None (the checkpoint's frozen ranges).
        calib_batches (int): Calibration batches. Defaults to 10.
        batch_size (int): Calibration batch size. Defaults to 8.
        seed (int): Seed of the calibration draw. Defaults to 0.
        opset (int): ONNX opset. Defaults to 17.

    Returns:
        tuple[ExportReport, nn.Module]: What was exported, and the backbone
        (biases snapped to their int32 grid, see ``snap_biases``).
    """
    check_writable(out)
    pretrained = load_pretrained(checkpoint, config)
    backbone = pretrained.build_configured()
    if calib_images is not None:
        pretrained.calibrate(backbone, calib_images,
                             _calibration(batch_size, calib_batches, seed))
    require_ranges(backbone, f'Checkpoint {checkpoint}')
    indices = pretrained.backbone_cfg.get('out_indices', (3, ))
    indices = [indices] if isinstance(indices, int) else list(indices)
    outputs = [f'stage{i}' for i in indices]
    bits = ','.join(sorted({_bits_text(w, a) for w, a in getattr(
        backbone, 'layer_bits', {}).values()})) or 'fp'
    placement = getattr(backbone, 'placement', pretrained.placement)
    report = _export(backbone, out, outputs, opset,
                     _metadata(pretrained, {'ssql_mm.bits': bits}, outputs,
                               placement))
    return report, backbone


def save_calibrated(model: nn.Module, pretrained_cfg: dict,
                    mean: Sequence[float], std: Sequence[float],
                    path: str) -> None:
    """Save a calibrated backbone so the exact reference can be rebuilt.

    The file holds ``backbone.*`` weights with the frozen activation ranges
    (and, after a PTQ reconstruction, the rounded weights and frozen weight
    clipping values ``*.weight_quant.max_abs``) and a config (with the
    model's quantizer placement), so ``load_pretrained`` + ``build`` restore
    the very fake-quantized model that was exported, without calibrating
    (or reconstructing) again.

    Args:
        model (nn.Module): The calibrated backbone.
        pretrained_cfg (dict): Its float backbone config.
        mean (Sequence[float]): Normalisation mean, 0-255 scale.
        std (Sequence[float]): Normalisation std, 0-255 scale.
        path (str): The file to write.
    """
    cfg = Config(dict(model=dict(backbone=pretrained_cfg,
                                 quant_cfg=dict(placement=getattr(
                                     model, 'placement', None)),
                                 data_preprocessor=dict(mean=list(mean),
                                                        std=list(std)))))
    state = {f'backbone.{k}': v for k, v in model.state_dict().items()}
    write_checkpoint({'state_dict': state, 'meta': {'cfg': cfg.pretty_text}},
                     path)
