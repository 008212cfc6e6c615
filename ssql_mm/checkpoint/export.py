"""Export the backbone of a checkpoint for mmpretrain, mmdet/mmseg or
torchvision.

SSQL, SimSiam, BYOL and MoCo checkpoints written by mmpretrain keep the
(online/query) backbone under ``backbone.``; projector, predictor, momentum
encoder and queue sit beside it. The backbone keys of mmpretrain's ResNet are
those of mmdet's / mmseg's ResNet and of torchvision's, except for the deep
stem (``ResNetV1c``/``V1d``): mmpretrain nests ``stem.<i>.conv`` /
``stem.<i>.bn``, mmdet and mmseg use a flat ``nn.Sequential``
(``stem.<3i>`` conv, ``stem.<3i+1>`` BN, ``stem.<3i+2>`` ReLU), and
torchvision has no deep stem at all. Saved activation ranges are measured
data, not weights, and are left out.
"""
import os
import re
from collections import OrderedDict
from typing import Any, Dict, Mapping, Optional, Tuple

from torch import Tensor

from .errors import CheckpointMismatchError
from .io import write_checkpoint
from .report import ConversionReport
from .resnet import check_resnet_depth, find_resnet_depth
from .safe_load import read_checkpoint
from .state_dict import is_range_key, select_prefix, unwrap_state_dict

__all__ = ['BACKBONE_FORMATS', 'export_backbone', 'export_backbone_file']

BACKBONE_FORMATS = ('mmdet', 'torchvision', 'mmpretrain')
_DEEP_STEM = re.compile(r'^stem\.(\d+)\.(conv|bn)\.(.+)$')
_TORCHVISION_KEY = re.compile(
    r'^(conv1\.weight'
    r'|bn1\.\w+'
    r'|layer\d+\.\d+\.(conv\d\.weight|bn\d\.\w+|downsample\.0\.weight'
    r'|downsample\.1\.\w+))$')
# Keys of a bare backbone (a checkpoint that is the backbone alone).
_BACKBONE_ROOT = re.compile(r'^(conv1|bn1|stem|layer\d+)\.')


def _target(key: str, fmt: str) -> Optional[str]:
    """Key in ``fmt``, or None when that layout has no place for it."""
    match = _DEEP_STEM.match(key)
    if match and fmt == 'mmdet':
        index = 3 * int(match[1]) + (0 if match[2] == 'conv' else 1)
        return f'stem.{index}.{match[3]}'
    if fmt == 'torchvision':
        if match:
            raise CheckpointMismatchError(
                'This backbone has a deep stem (ResNetV1c/V1d), which '
                'torchvision ResNets do not have; use --format mmdet '
                '(mmdet/mmseg ResNetV1c) or --format mmpretrain.')
        return key if _TORCHVISION_KEY.match(key) else None
    return key


def _backbone(state: Dict[str, Tensor], prefix: str,
              report: ConversionReport) -> Tuple[str, Dict[str, Tensor]]:
    prefix = prefix if not prefix or prefix.endswith('.') else prefix + '.'
    if prefix and not any(k.startswith(prefix) for k in state) and all(
            _BACKBONE_ROOT.match(k) or k.startswith('fc.') for k in state):
        prefix = ''  # already a bare backbone
    backbone = select_prefix(
        state, prefix, fix='Pass the backbone prefix with --prefix (e.g. '
        '--prefix encoder.).')
    for key in state:
        if prefix and not key.startswith(prefix):
            report.dropped[key] = ('not part of the backbone (neck, head, '
                                   'momentum encoder...)')
    return prefix, backbone


def export_backbone(
        checkpoint: Mapping[str, Any],
        fmt: str = 'mmdet',
        prefix: str = 'backbone.',
        depth: Optional[int] = None,
        strict: bool = True) -> Tuple['OrderedDict[str, Tensor]',
                                      ConversionReport]:
    """Backbone-only state dict of a checkpoint, in the layout of ``fmt``.

    Args:
        checkpoint (Mapping): A loaded checkpoint (``{'state_dict': ...}``)
            or a bare state dict; a DDP ``module.`` prefix is removed.
        fmt (str): ``'mmdet'`` (mmdet/mmseg ResNet; also right for
            mmpretrain unless the stem is deep), ``'torchvision'``
            (``torchvision.models.resnet*`` without ``fc``) or
            ``'mmpretrain'`` (keys unchanged). Defaults to 'mmdet'.
        prefix (str): Where the backbone sits in the checkpoint; a
            checkpoint that is a bare backbone is taken whole. Defaults to
            'backbone.' (mmpretrain SSQL, SimSiam, BYOL, MoCo).
        depth (int, optional): Expected ResNet depth; another one is an
            error. Defaults to None (accept any).
        strict (bool): Raise on backbone keys the torchvision layout has no
            name for. Defaults to True.

    Returns:
        tuple: The backbone state dict and a :class:`ConversionReport`
        (``mapped``: source key to output key).

    Raises:
        ValueError: Unknown ``fmt``.
        CheckpointMismatchError: No state dict, no key under ``prefix``, a
            deep stem for torchvision, unknown keys with ``strict``, or a
            depth other than ``depth``.
    """
    if fmt not in BACKBONE_FORMATS:
        raise ValueError(f'Unknown backbone format {fmt!r}; choose one of '
                         f'{BACKBONE_FORMATS}.')
    report = ConversionReport()
    prefix, backbone = _backbone(unwrap_state_dict(checkpoint), prefix,
                                 report)
    exported: 'OrderedDict[str, Tensor]' = OrderedDict()
    for key, value in backbone.items():
        source = prefix + key
        if is_range_key(key):
            report.dropped[source] = ('activation range (measured on the '
                                      'pretraining data, not a weight)')
        elif fmt == 'torchvision' and key.startswith('fc.'):
            report.dropped[source] = ('classifier: torchvision fc is '
                                      'task-specific')
        else:
            target = _target(key, fmt)
            if target is None:
                report.unmapped.append(source)
                continue
            exported[target] = value.detach().clone()
            report.mapped[source] = target
    if strict and report.unmapped:
        raise CheckpointMismatchError(
            f'{len(report.unmapped)} backbone keys have no torchvision '
            f'ResNet counterpart (avg-pool-shortcut variants such as '
            f'ResNetV1d cannot be converted): {report.unmapped[:8]}; use '
            '--format mmdet or mmpretrain.')
    report.depth = find_resnet_depth(exported)
    check_resnet_depth(report.depth, depth)
    if fmt == 'torchvision':
        report.notes.append(
            f'load into torchvision.models.resnet{report.depth or ""}() with '
            "strict=False (only 'fc.weight' and 'fc.bias' stay missing) or "
            'set model.fc = nn.Identity() and load strictly')
        stem = exported.get('conv1.weight')
        if stem is not None and stem.shape[-1] == 3:
            report.notes.append(
                'the stem is the 3x3 CIFAR one: before loading, set '
                'model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False) and '
                'model.maxpool = nn.Identity()')
    return exported, report


def export_backbone_file(src: str,
                         dst: str,
                         fmt: str = 'mmdet',
                         prefix: str = 'backbone.',
                         depth: Optional[int] = None,
                         strict: bool = True,
                         trusted: bool = False) -> ConversionReport:
    """Read a checkpoint, export its backbone and write it to ``dst``.

    The output holds ``{'state_dict': backbone, 'meta': {...}}`` for the
    mmdet/mmpretrain formats (what MMEngine's ``load_checkpoint`` and
    ``init_cfg=dict(type='Pretrained')`` expect) and the bare state dict for
    torchvision (what ``model.load_state_dict(torch.load(dst))`` expects).
    The same input gives the same bytes; the write is atomic.

    Args:
        src (str): The checkpoint.
        dst (str): Where to write the backbone.
        fmt (str): See :func:`export_backbone`. Defaults to 'mmdet'.
        prefix (str): See :func:`export_backbone`. Defaults to 'backbone.'.
        depth (int, optional): See :func:`export_backbone`. Defaults to
            None.
        strict (bool): See :func:`export_backbone`. Defaults to True.
        trusted (bool): Load ``src`` without the safe allow-list (only for
            files whose origin you trust). Defaults to False.

    Returns:
        ConversionReport: What was mapped, renamed and dropped.
    """
    checkpoint = read_checkpoint(src, trusted=trusted)
    backbone, report = export_backbone(checkpoint, fmt, prefix, depth, strict)
    if fmt == 'torchvision':
        out: Dict[str, Any] = backbone
    else:
        meta = checkpoint.get('meta')
        out = dict(state_dict=backbone,
                   meta=dict(source_meta=meta if isinstance(meta, dict)
                             else {}, extracted_from=prefix, format=fmt,
                             depth=report.depth))
    write_checkpoint(out, os.fspath(dst))
    return report
