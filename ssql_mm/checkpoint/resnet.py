"""The standard ResNet layouts, and the depth a set of weights belongs to."""
import re
from typing import Dict, Iterable, Optional, Tuple

from .errors import CheckpointMismatchError

__all__ = [
    'RESNET_LAYOUTS', 'find_resnet_depth', 'infer_resnet_depth',
    'check_resnet_depth'
]

# depth -> (block type, blocks per stage); mmpretrain, mmdet, mmseg and
# torchvision ResNets share these.
RESNET_LAYOUTS: Dict[int, Tuple[str, Tuple[int, ...]]] = {
    18: ('basic', (2, 2, 2, 2)),
    34: ('basic', (3, 4, 6, 3)),
    50: ('bottleneck', (3, 4, 6, 3)),
    101: ('bottleneck', (3, 4, 23, 3)),
    152: ('bottleneck', (3, 8, 36, 3)),
}

_BLOCK_KEY = re.compile(r'^layer(\d+)\.(\d+)\.')


def _layout(keys: Iterable[str]) -> Tuple[str, Tuple[int, ...]]:
    blocks: Dict[int, set] = {}
    bottleneck = False
    for key in keys:
        match = _BLOCK_KEY.match(key)
        if match:
            blocks.setdefault(int(match.group(1)), set()).add(
                int(match.group(2)))
            bottleneck = bottleneck or '.conv3.' in key
    stages = tuple(len(blocks[s]) for s in sorted(blocks))
    return ('bottleneck' if bottleneck else 'basic'), stages


def find_resnet_depth(keys: Iterable[str]) -> Optional[int]:
    """Depth of a ResNet from its state-dict keys, or None.

    Args:
        keys (Iterable[str]): Keys without a prefix
            (``layer1.0.conv1.weight``, ...).

    Returns:
        int or None: One of :data:`RESNET_LAYOUTS`, or None when the blocks
        match no standard ResNet.
    """
    layout = _layout(keys)
    return next((d for d, known in RESNET_LAYOUTS.items() if known == layout),
                None)


def infer_resnet_depth(keys: Iterable[str]) -> int:
    """Like :func:`find_resnet_depth`, but a non-standard layout is an error.

    Args:
        keys (Iterable[str]): Keys without a prefix.

    Returns:
        int: The depth.

    Raises:
        CheckpointMismatchError: The blocks match no standard ResNet.
    """
    keys = list(keys)
    depth = find_resnet_depth(keys)
    if depth is None:
        block, stages = _layout(keys)
        raise CheckpointMismatchError(
            f'The checkpoint holds a ResNet with {block} blocks {stages} per '
            f'stage, which matches no ResNet depth ({sorted(RESNET_LAYOUTS)})'
            '; check the prefix and that the weights are a ResNet.')
    return depth


def check_resnet_depth(found: Optional[int], expected: Optional[int]) -> None:
    """Fail when the checkpoint's depth is not the one asked for.

    Args:
        found (int, optional): Depth inferred from the checkpoint; None for
            a non-standard layout.
        expected (int, optional): Depth asked for; None accepts any.

    Raises:
        CheckpointMismatchError: The depths differ.
    """
    if expected is None or found == expected:
        return
    if found is None:
        raise CheckpointMismatchError(
            f'ResNet-{expected} was requested, but the checkpoint holds no '
            'standard ResNet; drop --depth or check the prefix.')
    block, stages = RESNET_LAYOUTS[found]
    raise CheckpointMismatchError(
        f'Depth mismatch: the checkpoint holds a ResNet-{found} ({block} '
        f'blocks {stages}), but ResNet-{expected} was requested. Use '
        f'depth={found} (--depth {found}) or a config with depth={found}.')
