"""Refuse a pretrained checkpoint that does not fit the backbone.

MMEngine's ``PretrainedInit`` loads with ``strict=False`` and only logs the
keys it could not match, so a checkpoint of the wrong depth, the wrong stem
or the wrong prefix silently leaves the backbone randomly initialised. The
check here reads the same checkpoint first and raises, naming the fix, when
any backbone key is missing, unexpected or of another shape.
"""
from typing import Dict, List, Optional, Tuple

from mmengine.runner.checkpoint import CheckpointLoader
from torch import Tensor, nn

from .errors import CheckpointMismatchError, PretrainedMismatchError
from .resnet import find_resnet_depth
from .state_dict import is_range_key, select_prefix, unwrap_state_dict

__all__ = [
    'pretrained_init_cfg', 'load_pretrained_state', 'check_backbone_state'
]


def pretrained_init_cfg(init_cfg) -> Optional[dict]:
    """The ``type='Pretrained'`` entry of an ``init_cfg``, if any.

    Args:
        init_cfg (dict | list[dict] | None): A module's ``init_cfg``.

    Returns:
        dict or None: The Pretrained entry.
    """
    cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    for cfg in cfgs:
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            return cfg
    return None


def load_pretrained_state(checkpoint: str,
                          prefix: Optional[str] = None) -> Dict[str, Tensor]:
    """Load a checkpoint's state dict and keep the keys under ``prefix``.

    Args:
        checkpoint (str): Path or URL understood by MMEngine.
        prefix (str, optional): Keep keys starting with it and strip it
            (``'backbone.'``). Defaults to None (all keys).

    Returns:
        dict[str, Tensor]: The (stripped) state dict.

    Raises:
        PretrainedMismatchError: No state dict, or no key under ``prefix``.
    """
    loaded = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    try:
        state = unwrap_state_dict(loaded, f"'{checkpoint}'")
        return select_prefix(
            state, prefix, f"'{checkpoint}'",
            fix='Set init_cfg.prefix to one of these (or None for a '
            'backbone-only checkpoint, e.g. one written by '
            'tools/extract_backbone.py).')
    except CheckpointMismatchError as err:
        raise PretrainedMismatchError(
            f'{err} (init_cfg.checkpoint)') from None


def _ignored(key: str) -> bool:
    """A classifier head (torchvision) or a saved activation range."""
    return key.startswith('fc.') or is_range_key(key)


def _describe(model_keys, ckpt_keys) -> str:
    hints = []
    if any(k.startswith('backbone.') for k in ckpt_keys):
        hints.append("the checkpoint keeps the backbone under 'backbone.': "
                     "set init_cfg.prefix='backbone.'")
    model_depth = find_resnet_depth(model_keys)
    ckpt_depth = find_resnet_depth(ckpt_keys)
    if ckpt_depth and model_depth and ckpt_depth != model_depth:
        hints.append(f'the checkpoint is a ResNet-{ckpt_depth} and the '
                     f'backbone a ResNet-{model_depth}: set '
                     f'model.backbone.depth={ckpt_depth} or use a '
                     f'ResNet-{model_depth} checkpoint')
    model_deep = any(k.startswith('stem.') for k in model_keys)
    ckpt_deep = any(k.startswith('stem.') for k in ckpt_keys)
    if model_deep != ckpt_deep:
        which = 'deep stem (V1c/V1d)' if ckpt_deep else 'single 7x7 stem'
        hints.append(f'the checkpoint has a {which}: pick the matching type '
                     "('mmpretrain.QuantResNetV1c' for a deep stem, "
                     "'mmpretrain.QuantResNet' otherwise)")
    if not hints:
        hints.append('check init_cfg.checkpoint, init_cfg.prefix and the '
                     'backbone type/depth against the pretraining config')
    return '; '.join(hints)


def check_backbone_state(backbone: nn.Module, state: Dict[str, Tensor],
                         source: str = 'the checkpoint') -> None:
    """Raise unless ``state`` fills every key of ``backbone`` exactly.

    Extra ``fc.*`` keys and saved activation ranges are allowed.

    Args:
        backbone (nn.Module): The backbone to be loaded.
        state (dict[str, Tensor]): Its candidate state dict (prefix
            stripped).
        source (str): How to name the checkpoint in messages.
            Defaults to 'the checkpoint'.

    Raises:
        PretrainedMismatchError: A key is missing, unexpected or of another
            shape; the message names the fix.
    """
    expected = backbone.state_dict()
    given = {k: v for k, v in state.items() if not _ignored(k)}
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    wrong_shape: List[Tuple[str, tuple, tuple]] = [
        (k, tuple(given[k].shape), tuple(expected[k].shape))
        for k in sorted(set(given) & set(expected))
        if tuple(given[k].shape) != tuple(expected[k].shape)
    ]
    if not (missing or unexpected or wrong_shape):
        return
    lines = [f'{source} does not match {type(backbone).__name__}:']
    if missing:
        lines.append(f'{len(missing)} backbone key(s) missing, e.g. '
                     f'{missing[:4]};')
    if unexpected:
        lines.append(f'{len(unexpected)} unexpected key(s), e.g. '
                     f'{unexpected[:4]};')
    for key, got, want in wrong_shape[:4]:
        lines.append(f'{key}: checkpoint shape {got}, backbone {want};')
    lines.append('Fix: ' + _describe(expected, given) + '.')
    raise PretrainedMismatchError(' '.join(lines))
