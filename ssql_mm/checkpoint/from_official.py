"""Official SSQL-SimSiam checkpoints to ssql_mm (mmpretrain SimSiam) keys.

The official code stores each BatchNorm inside the conv/linear it follows
(``<layer>.bn_function.*``), keeps quantizer state next to the weights, names
the CIFAR ResNet shortcut ``layerX.0.downsample`` (one conv, BN inside) and
the projector ``fc.0/fc.3/fc.6``. ssql_mm uses mmpretrain's names:
``backbone.*`` (``ResNet``/``ResNet_CIFAR``), ``neck.*`` and
``head.predictor.*`` (``NonLinearNeck``).
"""
import re
from collections import OrderedDict
from typing import Any, Dict, Mapping, Optional, Tuple

import torch

from .errors import CheckpointMismatchError
from .io import write_checkpoint
from .report import ConversionReport
from .resnet import check_resnet_depth, infer_resnet_depth
from .safe_load import read_checkpoint
from .state_dict import select_prefix, unwrap_state_dict

__all__ = ['convert_official_ssql', 'convert_official_file']

_ENCODER = 'encoder_q.model.'
_PREDICTOR = 'predictor.'
_BN_INSIDE = '.bn_function'
_QUANTIZER = re.compile(r'(^|\.)\w*quantizer(\.|$)')

# official projector index -> NonLinearNeck index, for the linear and for a
# BatchNorm stored in its usual place right after it
_PROJ_LINEAR = {'0': 0, '3': 1, '6': 2}
_PROJ_BN = {'1': 0, '4': 1, '7': 2}
_PRED_LINEAR = {'0': 0, '3': 1}
_PRED_BN = {'1': 0}

_CONV = re.compile(r'^(layer\d+\.\d+)\.conv(\d)$')
_BN = re.compile(r'^(layer\d+\.\d+)\.bn(\d)$')
_SHORTCUT = re.compile(r'^(layer\d+\.\d+)\.downsample(\.0|\.1)?$')


def _backbone_module(owner: str, bn_inside: bool) -> Optional[str]:
    """mmpretrain name of a backbone module (None when unknown)."""
    if owner in ('conv1', 'bn1'):
        return 'bn1' if bn_inside or owner == 'bn1' else 'conv1'
    match = _CONV.match(owner)
    if match:
        block, idx = match.groups()
        return f'{block}.bn{idx}' if bn_inside else f'{block}.conv{idx}'
    match = _BN.match(owner)
    if match and not bn_inside:
        return owner
    match = _SHORTCUT.match(owner)
    if match:
        block, sub = match.groups()
        if bn_inside or sub == '.1':
            return f'{block}.downsample.1'
        return f'{block}.downsample.0'
    return None


def _head_module(owner: str, bn_inside: bool, linear: Dict[str, int],
                 bn: Dict[str, int], prefix: str) -> Optional[str]:
    """NonLinearNeck name of a projector/predictor module."""
    if owner in linear:
        idx = linear[owner]
        return f'{prefix}bn{idx}' if bn_inside else f'{prefix}fc{idx}'
    if owner in bn and not bn_inside:
        return f'{prefix}bn{bn[owner]}'
    return None


def _target_key(key: str) -> Tuple[Optional[str], Optional[str]]:
    """Target key of one source key, or the reason it is dropped."""
    if key.startswith(_ENCODER):
        inner, part = key[len(_ENCODER):], 'encoder'
    elif key.startswith(_PREDICTOR):
        inner, part = key[len(_PREDICTOR):], 'predictor'
    else:
        return None, None
    if _QUANTIZER.search(inner):
        return None, 'quantizer state (ssql_mm keeps it non-persistent)'
    module, _, param = inner.rpartition('.')
    bn_inside = module.endswith(_BN_INSIDE)
    owner = module[:-len(_BN_INSIDE)] if bn_inside else module
    if part == 'predictor':
        name = _head_module(owner, bn_inside, _PRED_LINEAR, _PRED_BN,
                            'head.predictor.')
    elif owner.startswith('fc.'):
        name = _head_module(owner[3:], bn_inside, _PROJ_LINEAR, _PROJ_BN,
                            'neck.')
    else:
        name = _backbone_module(owner, bn_inside)
        name = None if name is None else f'backbone.{name}'
    return (None, None) if name is None else (f'{name}.{param}', None)


def convert_official_ssql(
        checkpoint: Mapping[str, Any],
        depth: Optional[int] = None,
        neck_last_bias: bool = False,
        strict: bool = True) -> Tuple['OrderedDict[str, torch.Tensor]',
                                      ConversionReport]:
    """Convert an official SSQL-SimSiam state dict to ssql_mm keys.

    Args:
        checkpoint (Mapping): The loaded official file (``state_dict`` inside)
            or its state dict. A DDP ``module.`` prefix is removed.
        depth (int, optional): Expected ResNet depth; a different depth in
            the file is an error. Defaults to None (accept any).
        neck_last_bias (bool): Keep ``fc.6.bias`` as ``neck.fc2.bias``. The
            ssql_mm/mmpretrain SimSiam projector has no last bias; the
            official one is frozen and cancelled by the affine-free BN after
            it, so dropping it changes no output. Defaults to False.
        strict (bool): Raise when a key is not understood. Defaults to True.

    Returns:
        tuple: The converted state dict (``backbone.*``, ``neck.*``,
        ``head.predictor.*``) and a :class:`ConversionReport`.

    Raises:
        CheckpointMismatchError: Unknown keys with ``strict``, two keys with
            one target, or a depth other than ``depth``.
    """
    report = ConversionReport()
    converted: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    for key, value in unwrap_state_dict(checkpoint).items():
        target, reason = _target_key(key)
        if target is not None and target == 'neck.fc2.bias' \
                and not neck_last_bias:
            target, reason = None, ('projector last bias (frozen, cancelled '
                                    'by the affine-free BN that follows)')
        if target is None:
            if reason is None:
                report.unmapped.append(key)
            else:
                report.dropped[key] = reason
            continue
        if target in converted:
            raise CheckpointMismatchError(
                f'{key} and another key both map to {target}.')
        converted[target] = value
        report.mapped[key] = target
    if strict and report.unmapped:
        raise CheckpointMismatchError(
            f'{len(report.unmapped)} keys of the official checkpoint are not '
            f'understood: {report.unmapped}; pass --allow-unmapped to skip '
            'them.')
    backbone = [k[len('backbone.'):] for k in converted
                if k.startswith('backbone.')]
    report.depth = infer_resnet_depth(backbone)
    check_resnet_depth(report.depth, depth)
    return converted, report


def convert_official_file(src: str,
                          dst: str,
                          backbone_only: bool = False,
                          depth: Optional[int] = None,
                          neck_last_bias: bool = False,
                          strict: bool = True,
                          trusted: bool = False) -> ConversionReport:
    """Convert an official SSQL checkpoint file and save the result.

    Args:
        src (str): Official checkpoint.
        dst (str): Output file, ``{'meta': ..., 'state_dict': ...}``,
            written atomically and reproducibly.
        backbone_only (bool): Keep only the backbone, without the
            ``backbone.`` prefix. Defaults to False.
        depth (int, optional): Expected ResNet depth. Defaults to None.
        neck_last_bias (bool): See :func:`convert_official_ssql`.
            Defaults to False.
        strict (bool): Fail on keys not understood. Defaults to True.
        trusted (bool): Load ``src`` without the safe allow-list; only for
            files from a trusted source. Defaults to False.

    Returns:
        ConversionReport: What was mapped, dropped and not understood.
    """
    checkpoint = read_checkpoint(src, trusted=trusted)
    state_dict, report = convert_official_ssql(
        checkpoint, depth=depth, neck_last_bias=neck_last_bias, strict=strict)
    if backbone_only:
        for key, target in list(report.mapped.items()):
            if not target.startswith('backbone.'):
                del report.mapped[key]
                report.dropped[key] = 'not part of the backbone'
        state_dict = select_prefix(state_dict, 'backbone.')
    meta = dict(converted_from='official SSQL checkpoint', depth=report.depth,
                backbone_only=backbone_only)
    if isinstance(checkpoint.get('epoch'), int):
        meta['epoch'] = checkpoint['epoch']
    write_checkpoint({'meta': meta, 'state_dict': dict(state_dict)}, dst)
    return report
