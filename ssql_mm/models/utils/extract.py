"""Cut the backbone out of a self-supervised checkpoint.

SSQL, SimSiam, BYOL and MoCo checkpoints written by mmpretrain keep the
(online/query) backbone under ``backbone.``; projector, predictor, momentum
encoder and queue sit beside it. The backbone keys of mmpretrain's ResNet
are those of mmdet's / mmseg's ResNet and of torchvision's, except for the
deep stem (``ResNetV1c``/``V1d``): mmpretrain nests ``stem.<i>.conv`` /
``stem.<i>.bn``, mmdet and mmseg use a flat ``nn.Sequential``
(``stem.<3i>`` conv, ``stem.<3i+1>`` BN, ``stem.<3i+2>`` ReLU), and
torchvision has no deep stem at all.
"""
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor

from ssql_mm.checkpoint import safe_load

__all__ = [
    'BACKBONE_FORMATS', 'ExtractReport', 'extract_backbone', 'save_backbone'
]

BACKBONE_FORMATS = ('mmdet', 'torchvision', 'mmpretrain')
_DEEP_STEM = re.compile(r'^stem\.(\d+)\.(conv|bn)\.(.+)$')
# Calibrated activation ranges of quantized layers: not backbone weights.
_RANGE_KEY = re.compile(r'\.input_quant\.(min_val|max_val)$')


@dataclass
class ExtractReport:
    """What :func:`extract_backbone` kept, renamed and dropped.

    Args:
        kept (int): Number of backbone tensors written.
        renamed (dict[str, str]): Old key -> new key, for renamed keys.
        dropped (list[str]): Backbone keys left out (activation ranges).
        other_prefixes (list[str]): Top-level prefixes of the other keys of
            the checkpoint (neck, head, momentum encoder...), not written.
    """
    kept: int = 0
    renamed: Dict[str, str] = field(default_factory=dict)
    dropped: List[str] = field(default_factory=list)
    other_prefixes: List[str] = field(default_factory=list)


def _state_dict(checkpoint) -> Dict[str, Tensor]:
    if isinstance(checkpoint, dict) and isinstance(
            checkpoint.get('state_dict'), dict):
        checkpoint = checkpoint['state_dict']
    if not isinstance(checkpoint, dict) or not all(
            isinstance(v, Tensor) for v in checkpoint.values()):
        raise ValueError('The checkpoint holds no state dict of tensors; '
                         'pass a file saved by mmengine (a dict with '
                         "'state_dict') or torch.save(model.state_dict()).")
    return {re.sub(r'^module\.', '', k): v for k, v in checkpoint.items()}


def _rename(key: str, fmt: str) -> str:
    match = _DEEP_STEM.match(key)
    if fmt == 'mmdet' and match:
        index = 3 * int(match[1]) + (0 if match[2] == 'conv' else 1)
        return f'stem.{index}.{match[3]}'
    if fmt == 'torchvision' and match:
        raise ValueError(
            'This backbone has a deep stem (ResNetV1c/V1d), which torchvision '
            'ResNets do not have; use --format mmdet (mmdet/mmseg '
            'ResNetV1c) or --format mmpretrain.')
    return key


def extract_backbone(checkpoint,
                     fmt: str = 'mmdet',
                     prefix: str = 'backbone.'
                     ) -> Tuple[Dict[str, Tensor], ExtractReport]:
    """Backbone-only state dict of a self-supervised checkpoint.

    Args:
        checkpoint (dict): A loaded checkpoint (``{'state_dict': ...}`` or a
            bare state dict).
        fmt (str): Key layout of the output: ``'mmdet'`` (mmdet/mmseg
            ResNet; also right for mmpretrain unless the stem is deep),
            ``'torchvision'`` (``torchvision.models.resnet*`` without
            ``fc``) or ``'mmpretrain'`` (keys unchanged). Defaults to
            'mmdet'.
        prefix (str): Where the backbone sits in the checkpoint.
            Defaults to 'backbone.' (mmpretrain SSQL, SimSiam, BYOL, MoCo).

    Returns:
        tuple[dict[str, Tensor], ExtractReport]: The backbone state dict and
        what was done.
    """
    if fmt not in BACKBONE_FORMATS:
        raise ValueError(f'Unknown backbone format {fmt!r}; choose one of '
                         f'{BACKBONE_FORMATS}.')
    state = _state_dict(checkpoint)
    prefix = prefix if prefix.endswith('.') else prefix + '.'
    report = ExtractReport()
    backbone: Dict[str, Tensor] = {}
    for key, value in state.items():
        if not key.startswith(prefix):
            head = key.split('.')[0]
            if head not in report.other_prefixes:
                report.other_prefixes.append(head)
            continue
        key = key[len(prefix):]
        if _RANGE_KEY.search(key):
            report.dropped.append(key)
            continue
        new_key = _rename(key, fmt)
        if new_key != key:
            report.renamed[key] = new_key
        backbone[new_key] = value.detach().clone()
    if not backbone:
        raise ValueError(
            f"No key starts with '{prefix}'; the checkpoint's keys start with "
            f'{report.other_prefixes[:8]}. Pass the backbone prefix with '
            '--prefix (e.g. --prefix encoder.).')
    report.kept = len(backbone)
    return backbone, report


def save_backbone(src: str,
                  dst: str,
                  fmt: str = 'mmdet',
                  prefix: str = 'backbone.',
                  trusted: bool = False) -> ExtractReport:
    """Read a checkpoint, extract its backbone and write it to ``dst``.

    The output holds ``{'state_dict': backbone, 'meta': {...}}`` for the
    mmdet/mmpretrain formats (what mmengine's ``load_checkpoint`` and
    ``init_cfg=dict(type='Pretrained')`` expect) and the bare state dict
    for torchvision (what ``model.load_state_dict(torch.load(dst))``
    expects).

    Args:
        src (str): The self-supervised checkpoint.
        dst (str): Where to write the backbone.
        fmt (str): See :func:`extract_backbone`. Defaults to 'mmdet'.
        prefix (str): See :func:`extract_backbone`. Defaults to 'backbone.'.
        trusted (bool): Load ``src`` without the safe allow-list (only for
            files whose origin you trust). Defaults to False.

    Returns:
        ExtractReport: What was kept, renamed and dropped.
    """
    checkpoint = safe_load(src, map_location='cpu', trusted=trusted)
    backbone, report = extract_backbone(checkpoint, fmt, prefix)
    if fmt == 'torchvision':
        out: Dict = backbone
    else:
        meta = checkpoint.get('meta', {}) if isinstance(checkpoint, dict) else {}
        out = dict(state_dict=backbone,
                   meta=dict(source_meta=meta, extracted_from=prefix,
                             format=fmt))
    torch.save(out, dst)
    return report
