"""The state dict inside a checkpoint: unwrap, ``module.``, prefixes, ranges."""
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional

from torch import Tensor

from .errors import CheckpointMismatchError

__all__ = [
    'unwrap_state_dict', 'select_prefix', 'top_level_prefixes',
    'is_range_key', 'RANGE_KEY'
]

# Calibrated activation ranges of quantized layers: measured on some data,
# not weights, so exporters and downstream loading leave them out.
RANGE_KEY = re.compile(r'\.input_quant\.(min_val|max_val)$')
_WRAPPER = 'module.'


def is_range_key(key: str) -> bool:
    """Whether ``key`` is a saved activation range (``*.input_quant.*_val``).

    Args:
        key (str): A state-dict key.

    Returns:
        bool: True for a range entry.
    """
    return RANGE_KEY.search(key) is not None


def unwrap_state_dict(checkpoint: Mapping[str, Any],
                      source: str = 'The checkpoint') -> Dict[str, Tensor]:
    """The tensors of a loaded checkpoint, without a DDP ``module.`` prefix.

    Args:
        checkpoint (Mapping): A loaded file: a dict with ``state_dict`` (or
            ``model``), or a bare state dict.
        source (str): How to name the checkpoint in messages. Defaults to
            'The checkpoint'.

    Returns:
        dict: Key to tensor, in file order, tensors that are not
        ``torch.Tensor`` values (plain numbers) left out.

    Raises:
        CheckpointMismatchError: Not a mapping, or no tensor in it.
    """
    inner: Any = checkpoint
    if isinstance(checkpoint, Mapping):
        for key in ('state_dict', 'model'):
            if isinstance(checkpoint.get(key), Mapping):
                inner = checkpoint[key]
                break
    if not isinstance(inner, Mapping) or not any(
            isinstance(v, Tensor) for v in inner.values()):
        raise CheckpointMismatchError(
            f'{source} holds no state dict of tensors; pass a file saved by '
            "MMEngine (a dict with 'state_dict') or by "
            'torch.save(model.state_dict()).')
    return {(k[len(_WRAPPER):] if k.startswith(_WRAPPER) else k): v
            for k, v in inner.items() if isinstance(v, Tensor)}


def top_level_prefixes(keys: Iterable[str]) -> List[str]:
    """Sorted first components of the keys, with the dot (``'backbone.'``).

    Args:
        keys (Iterable[str]): State-dict keys.

    Returns:
        list[str]: The distinct prefixes.
    """
    return sorted({k.split('.')[0] + '.' for k in keys})


def select_prefix(state_dict: Mapping[str, Tensor],
                  prefix: Optional[str],
                  source: str = 'the checkpoint',
                  fix: str = 'Pass the prefix the weights sit under.'
                  ) -> Dict[str, Tensor]:
    """The entries under ``prefix``, with the prefix removed.

    Args:
        state_dict (Mapping): Key to tensor.
        prefix (str, optional): E.g. ``'backbone.'`` (the dot is added when
            missing); None or '' keeps every key.
        source (str): How to name the checkpoint in messages. Defaults to
            'the checkpoint'.
        fix (str): What the user should change, appended to the error.
            Defaults to a generic hint.

    Returns:
        dict: The selected entries, in order.

    Raises:
        CheckpointMismatchError: No key starts with ``prefix``.
    """
    if not prefix:
        return dict(state_dict)
    prefix = prefix if prefix.endswith('.') else prefix + '.'
    kept = {k[len(prefix):]: v for k, v in state_dict.items()
            if k.startswith(prefix)}
    if not kept:
        raise CheckpointMismatchError(
            f"No key of {source} starts with '{prefix}'; its keys start "
            f'with {top_level_prefixes(state_dict)[:8]}. {fix}')
    return kept
