"""Refuse a checkpoint that does not fit the model it is loaded into.

MMEngine's ``PretrainedInit`` loads with ``strict=False`` and only logs the
keys it could not match, so a checkpoint of the wrong depth, the wrong stem
or the wrong prefix silently leaves the backbone randomly initialised. The
check here reads the same checkpoint first and raises, naming the fix, when
any backbone key is missing, unexpected or of another shape.

Resuming has the same gap and worse: MMEngine's ``resume`` loads the weights
non-strictly, then fails deep inside the optimizer (or on a missing
``meta`` key) with a traceback. :func:`check_resume_checkpoint` checks the
training state and every weight before the run starts.
"""
from typing import Any, Dict, List, Optional, Tuple

import torch
from mmengine.runner.checkpoint import CheckpointLoader
from torch import Tensor, nn

from .errors import (CheckpointMismatchError, CorruptCheckpointError,
                     PretrainedMismatchError)
from .resnet import find_resnet_depth
from .safe_load import read_checkpoint
from .state_dict import (is_range_key, select_prefix, top_level_prefixes,
                         unwrap_state_dict)

__all__ = [
    'pretrained_init_cfg', 'load_pretrained_state', 'check_backbone_state',
    'check_resume_checkpoint', 'check_finite_weights', 'check_finite_state'
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
    differences = _differences(expected, given, 'backbone')
    if not differences:
        return
    raise PretrainedMismatchError(
        f'{source} does not match {type(backbone).__name__}: '
        + ' '.join(differences) + ' Fix: ' + _describe(expected, given)
        + '.')


def _differences(expected: Dict[str, Any], given: Dict[str, Any],
                 target: str) -> List[str]:
    """Missing, unexpected and other-shape keys, as message parts."""
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    wrong_shape: List[Tuple[str, tuple, tuple]] = [
        (k, tuple(given[k].shape), tuple(expected[k].shape))
        for k in sorted(set(given) & set(expected))
        if tuple(given[k].shape) != tuple(expected[k].shape)
    ]
    parts = []
    if missing:
        parts.append(f'{len(missing)} {target} key(s) missing, e.g. '
                     f'{missing[:4]};')
    if unexpected:
        parts.append(f'{len(unexpected)} unexpected key(s), e.g. '
                     f'{unexpected[:4]};')
    for key, got, want in wrong_shape[:4]:
        parts.append(f'{key}: checkpoint shape {got}, {target} {want};')
    if len(wrong_shape) > 4:
        parts.append(f'{len(wrong_shape) - 4} more of another shape;')
    return parts


def check_resume_checkpoint(model: nn.Module, path: str) -> None:
    """Raise unless a run of ``model`` can resume from ``path``.

    The file must hold the training state MMEngine resumes (``meta.epoch``,
    ``meta.iter``, ``message_hub``) and exactly the model's weights, with
    their shapes (saved activation ranges aside).

    Args:
        model (nn.Module): The runner's model (unwrapped).
        path (str): The checkpoint to resume.

    Raises:
        CheckpointMismatchError: Weights only (a backbone from
            ``extract_backbone.py`` or ``publish``), or weights of another
            depth, width or model; the message names the fix.
    """
    loaded = read_checkpoint(path)
    meta = loaded.get('meta')
    if not (isinstance(meta, dict) and 'epoch' in meta and 'iter' in meta
            and 'message_hub' in loaded):
        raise CheckpointMismatchError(
            f"Checkpoint '{path}' holds weights only, no training state "
            '(meta.epoch, meta.iter, message_hub): it is not a checkpoint '
            'a run saved, e.g. a backbone from extract_backbone.py or '
            'model_zoo.py publish. --resume continues a run from its own '
            'epoch_*.pth / iter_*.pth; to start a new run from these '
            f"weights, pass --cfg-options load_from='{path}' (or use it as "
            "init_cfg=dict(type='Pretrained', ...)).")
    state = unwrap_state_dict(loaded, f"'{path}'")
    expected = {k: v for k, v in model.state_dict().items()
                if not is_range_key(k)}
    given = {k: v for k, v in state.items() if not is_range_key(k)}
    differences = _differences(expected, given, 'model')
    if not differences:
        return
    hints = []
    depths = [find_resnet_depth(select_prefix(keys, 'backbone.'))
              if any(k.startswith('backbone.') for k in keys) else None
              for keys in (given, expected)]
    if all(depths) and depths[0] != depths[1]:
        hints.append(f'it is a ResNet-{depths[0]} and this config a '
                     f'ResNet-{depths[1]} (model.backbone.depth)')
    elif set(given) == set(expected):
        hints.append('same layers, other widths: compare '
                     'model.backbone.base_channels and the neck sizes')
    if top_level_prefixes(given) != top_level_prefixes(expected):
        hints.append(f'it holds {top_level_prefixes(given)}, the model '
                     f'{top_level_prefixes(expected)}')
    raise CheckpointMismatchError(
        f"Checkpoint '{path}' does not fit the model of this config"
        + (f" ({'; '.join(hints)})" if hints else '') + ': '
        + ' '.join(differences) + ' Resume with a checkpoint of this config '
        '(same --cfg-options), or start a new run from its weights with '
        f"--cfg-options load_from='{path}'.")


def check_finite_weights(path: str, prefix: Optional[str] = 'backbone.'
                         ) -> None:
    """Raise if a checkpoint's weights hold NaN or infinite values.

    Features, calibration ranges and an exported model of such weights are
    not finite either; a diverged run is the usual cause.

    Args:
        path (str): The checkpoint.
        prefix (str, optional): Check only the keys under it. Defaults to
            ``'backbone.'``; None checks every key.

    Raises:
        CorruptCheckpointError: See :func:`check_finite_state`.
    """
    state = select_prefix(unwrap_state_dict(read_checkpoint(path),
                                            f"'{path}'"), prefix, f"'{path}'")
    check_finite_state(state, path, prefix or '')


def check_finite_state(state: Dict[str, Any], path: str,
                       prefix: str = '') -> None:
    """Raise if the floating-point tensors of a checkpoint's state dict hold
    NaN or infinite values.

    Args:
        state (dict): The state dict, or the part of it that is used.
        path (str): The checkpoint it comes from, for the message.
        prefix (str): The prefix stripped from the keys of ``state``, put
            back in the message (``'backbone.'``). Defaults to ''.

    Raises:
        CorruptCheckpointError: A tensor is not finite; the one-line message
            names the file and the first such tensor, counts its NaN and
            infinite values, and names the fix.
    """
    bad = [(key, int(torch.isnan(value).sum()), int(torch.isinf(value).sum()))
           for key, value in state.items()
           if isinstance(value, Tensor) and value.is_floating_point()
           and not bool(torch.isfinite(value).all())]
    if bad:
        key, nans, infs = bad[0]
        raise CorruptCheckpointError(
            f"Checkpoint '{path}' holds weights that are not finite: "
            f'{len(bad)} tensor(s), e.g. {prefix}{key} ({nans} NaN, '
            f'{infs} inf). Its features and an exported model would not be '
            'finite either; the run diverged or the file was altered. Use '
            'an earlier checkpoint (epoch_*.pth from before the loss '
            'became NaN).')
