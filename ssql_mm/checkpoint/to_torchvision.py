"""ssql_mm (mmpretrain ``ResNet``) checkpoints to torchvision ResNet weights.

mmpretrain's ``ResNet`` and ``ResNet_CIFAR`` already use torchvision's names
(``conv1``, ``bn1``, ``layerX.Y.convK/bnK``, ``downsample.0/1``), so the
conversion selects the backbone, removes its prefix and drops everything
torchvision has no place for (projector, predictor, classifier).
"""
import re
from collections import OrderedDict
from typing import Any, Mapping, Optional, Tuple

import torch

from .conversion import (ConversionReport, check_resnet_depth,
                         infer_resnet_depth, unwrap_state_dict)
from .safe_load import safe_load

__all__ = ['convert_to_torchvision', 'convert_to_torchvision_file']

_TORCHVISION_KEY = re.compile(
    r'^(conv1\.weight'
    r'|bn1\.\w+'
    r'|layer\d+\.\d+\.(conv\d\.weight|bn\d\.\w+|downsample\.0\.weight'
    r'|downsample\.1\.\w+))$')


def convert_to_torchvision(
        checkpoint: Mapping[str, Any],
        depth: Optional[int] = None,
        strict: bool = True) -> Tuple['OrderedDict[str, torch.Tensor]',
                                      ConversionReport]:
    """Convert an ssql_mm checkpoint to a torchvision ``resnet<depth>`` one.

    Args:
        checkpoint (Mapping): A loaded ssql_mm file (full SSQL model with
            ``backbone.*`` keys, or backbone only) or its state dict.
        depth (int, optional): Expected ResNet depth. Defaults to None.
        strict (bool): Raise on backbone keys torchvision has no name for
            (e.g. the deep stem of ``ResNetV1c``). Defaults to True.

    Returns:
        tuple: Torchvision state dict (no ``fc``) and a
        :class:`ConversionReport`.

    Raises:
        KeyError: Keys without a torchvision counterpart, with ``strict``.
        ValueError: The depth differs from ``depth``.
    """
    state_dict = unwrap_state_dict(checkpoint)
    has_prefix = any(k.startswith('backbone.') for k in state_dict)
    report = ConversionReport()
    converted: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    for key, value in state_dict.items():
        if has_prefix and not key.startswith('backbone.'):
            report.dropped[key] = ('not part of the backbone (projector, '
                                   'predictor or classifier)')
            continue
        target = key[len('backbone.'):] if has_prefix else key
        if target.startswith('fc.'):
            report.dropped[key] = 'classifier: torchvision fc is task-specific'
        elif _TORCHVISION_KEY.match(target):
            converted[target] = value
            report.mapped[key] = target
        else:
            report.unmapped.append(key)
    if strict and report.unmapped:
        raise KeyError(
            f'{len(report.unmapped)} backbone keys have no torchvision '
            f'ResNet counterpart (deep-stem or avg-pool-shortcut variants '
            f'such as ResNetV1c/V1d cannot be converted): {report.unmapped}')
    report.depth = infer_resnet_depth(converted)
    check_resnet_depth(report.depth, depth)
    report.notes.append(
        f'load into torchvision.models.resnet{report.depth}() with '
        "strict=False: only 'fc.weight' and 'fc.bias' stay missing")
    stem = converted.get('conv1.weight')
    if stem is not None and stem.shape[-1] == 3:
        report.notes.append(
            'the stem is the 3x3 CIFAR one: before loading, set model.conv1 '
            '= nn.Conv2d(3, 64, 3, 1, 1, bias=False) and model.maxpool = '
            'nn.Identity()')
    return converted, report


def convert_to_torchvision_file(src: str,
                                dst: str,
                                depth: Optional[int] = None,
                                strict: bool = True,
                                trusted: bool = False) -> ConversionReport:
    """Convert an ssql_mm checkpoint file; save a bare torchvision state dict.

    Args:
        src (str): ssql_mm checkpoint.
        dst (str): Output file (a plain state dict, as torchvision saves).
        depth (int, optional): Expected ResNet depth. Defaults to None.
        strict (bool): See :func:`convert_to_torchvision`. Defaults to True.
        trusted (bool): Load ``src`` without the safe allow-list; only for
            files from a trusted source. Defaults to False.

    Returns:
        ConversionReport: What was mapped and dropped.
    """
    state_dict, report = convert_to_torchvision(
        safe_load(src, trusted=trusted), depth=depth, strict=strict)
    torch.save(state_dict, dst)
    return report
