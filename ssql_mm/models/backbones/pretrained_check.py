"""Refuse a pretrained checkpoint that does not fit the backbone.

mmengine's ``PretrainedInit`` loads with ``strict=False`` and only logs the
keys it could not match, so a checkpoint of the wrong depth, the wrong stem
or the wrong prefix silently leaves the backbone randomly initialised. The
check here reads the same checkpoint first and raises, naming the fix, when
any backbone key is missing, unexpected or of another shape.

Activation ranges found in a pretrained checkpoint are discarded after
loading: they were measured on the pretraining data, and a downstream run
measures its own (``QuantCalibrationHook``).
"""
import re
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Tuple

from mmengine.runner.checkpoint import CheckpointLoader
from torch import Tensor, nn

from ssql_mm.quantization import freeze_ranges, reset_ranges

__all__ = [
    'PretrainedMismatchError', 'pretrained_init_cfg', 'load_prefixed_state',
    'guess_resnet_depth', 'check_backbone_state', 'strict_pretrained'
]

# Keys a backbone checkpoint may carry that are not backbone weights:
# a classifier head (torchvision) and calibrated activation ranges.
_IGNORED = re.compile(r'^fc\.|\.input_quant\.(min_val|max_val)$')
# (blocks per stage, bottleneck?) -> depth, for mmpretrain / torchvision ResNets.
_RESNET_DEPTHS = {
    ((2, 2, 2, 2), False): 18,
    ((3, 4, 6, 3), False): 34,
    ((3, 4, 6, 3), True): 50,
    ((3, 4, 23, 3), True): 101,
    ((3, 8, 36, 3), True): 152,
}


class PretrainedMismatchError(ValueError):
    """A pretrained checkpoint does not match the backbone it should fill."""


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


def load_prefixed_state(checkpoint: str,
                        prefix: Optional[str] = None) -> Dict[str, Tensor]:
    """Load a checkpoint's state dict and keep the keys under ``prefix``.

    Args:
        checkpoint (str): Path or URL understood by mmengine.
        prefix (str, optional): Keep keys starting with it and strip it
            (``'backbone.'``). Defaults to None (all keys).

    Returns:
        dict[str, Tensor]: The (stripped) state dict.
    """
    ckpt = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise PretrainedMismatchError(
            f'{checkpoint} holds no state dict (found {type(ckpt).__name__}). '
            'Point init_cfg.checkpoint at a checkpoint saved by mmengine or '
            'torch.save(model.state_dict()).')
    state = {re.sub(r'^module\.', '', k): v for k, v in state.items()}
    if not prefix:
        return state
    prefix = prefix if prefix.endswith('.') else prefix + '.'
    kept = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not kept:
        heads = sorted({k.split('.')[0] + '.' for k in state})[:8]
        raise PretrainedMismatchError(
            f"No key of {checkpoint} starts with prefix '{prefix}'; its keys "
            f'start with {heads}. Set init_cfg.prefix to one of these (or '
            'None for a backbone-only checkpoint, e.g. one written by '
            'tools/extract_backbone.py).')
    return kept


def guess_resnet_depth(keys) -> Optional[int]:
    """Guess the ResNet depth a set of state-dict keys belongs to.

    Args:
        keys (Iterable[str]): Backbone keys (``layer1.0.conv1.weight``...).

    Returns:
        int or None: 18/34/50/101/152, or None when the layout is not a
        standard four-stage ResNet.
    """
    blocks: Dict[int, set] = {}
    bottleneck = False
    for key in keys:
        match = re.match(r'layer(\d)\.(\d+)\.(conv\d)', key)
        if match:
            blocks.setdefault(int(match[1]), set()).add(int(match[2]))
            bottleneck |= match[3] == 'conv3'
    counts = tuple(len(blocks.get(i, ())) for i in range(1, 5))
    return _RESNET_DEPTHS.get((counts, bottleneck))


def _describe(model_keys, ckpt_keys) -> str:
    hints = []
    if any(k.startswith('backbone.') for k in ckpt_keys):
        hints.append("the checkpoint keeps the backbone under 'backbone.': "
                     "set init_cfg.prefix='backbone.'")
    model_depth = guess_resnet_depth(model_keys)
    ckpt_depth = guess_resnet_depth(ckpt_keys)
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
    """
    expected = backbone.state_dict()
    given = {k: v for k, v in state.items() if not _IGNORED.search(k)}
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
        lines.append(f'  {len(missing)} backbone key(s) missing, e.g. '
                     f'{missing[:4]}')
    if unexpected:
        lines.append(f'  {len(unexpected)} unexpected key(s), e.g. '
                     f'{unexpected[:4]}')
    for key, got, want in wrong_shape[:4]:
        lines.append(f'  {key}: checkpoint shape {got}, backbone {want}')
    lines.append('  Fix: ' + _describe(expected, given) + '.')
    raise PretrainedMismatchError('\n'.join(lines))


@contextmanager
def strict_pretrained(backbone: nn.Module) -> Iterator[None]:
    """Wrap a backbone's ``init_weights`` with the pretrained check.

    Before the body runs, a ``type='Pretrained'`` entry of
    ``backbone.init_cfg`` is read and checked with
    :func:`check_backbone_state`; afterwards activation ranges restored from
    it are forgotten so that the downstream data are calibrated afresh.

    Args:
        backbone (nn.Module): A backbone whose ``init_weights`` is running.
    """
    cfg = pretrained_init_cfg(getattr(backbone, 'init_cfg', None))
    if cfg is not None and not getattr(backbone, '_is_init', False):
        state = load_prefixed_state(cfg['checkpoint'], cfg.get('prefix'))
        check_backbone_state(backbone, state, str(cfg['checkpoint']))
    yield
    if cfg is not None:
        freeze_ranges(backbone, False)
        reset_ranges(backbone)
