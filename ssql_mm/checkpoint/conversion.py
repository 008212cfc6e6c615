"""What every checkpoint converter shares: a report and ResNet depth checks."""
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

import torch

__all__ = [
    'ConversionReport', 'RESNET_LAYOUTS', 'infer_resnet_depth',
    'check_resnet_depth', 'unwrap_state_dict', 'save_converted'
]

# depth -> (block type, blocks per stage)
RESNET_LAYOUTS: Dict[int, Tuple[str, Tuple[int, ...]]] = {
    18: ('basic', (2, 2, 2, 2)),
    34: ('basic', (3, 4, 6, 3)),
    50: ('bottleneck', (3, 4, 6, 3)),
    101: ('bottleneck', (3, 4, 23, 3)),
    152: ('bottleneck', (3, 8, 36, 3)),
}

_BLOCK_KEY = re.compile(r'^layer(\d+)\.(\d+)\.')


@dataclass
class ConversionReport:
    """What a converter did with each source key.

    Attributes:
        mapped (dict): Source key to target key.
        dropped (dict): Source key to the reason it was left out on purpose.
        unmapped (list): Source keys the converter did not understand.
        notes (list): Remarks about the result (e.g. how to load it).
        depth (int, optional): ResNet depth found in the checkpoint.
    """
    mapped: Dict[str, str] = field(default_factory=dict)
    dropped: Dict[str, str] = field(default_factory=dict)
    unmapped: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    depth: Optional[int] = None

    def summary(self, max_keys: int = 10) -> str:
        """Human-readable summary, dropped keys grouped by reason.

        Args:
            max_keys (int): Keys listed per group before eliding.
                Defaults to 10.

        Returns:
            str: Several lines of text.
        """
        lines = [f'mapped {len(self.mapped)} keys'
                 + (f' (ResNet-{self.depth})' if self.depth else '')]
        by_reason: Dict[str, List[str]] = {}
        for key, reason in self.dropped.items():
            by_reason.setdefault(reason, []).append(key)
        for reason, keys in by_reason.items():
            lines.append(f'dropped {len(keys)} keys: {reason}')
            lines += [f'    {k}' for k in keys[:max_keys]]
            if len(keys) > max_keys:
                lines.append(f'    ... and {len(keys) - max_keys} more')
        if self.unmapped:
            lines.append(f'unmapped {len(self.unmapped)} keys:')
            lines += [f'    {k}' for k in self.unmapped]
        lines += [f'note: {n}' for n in self.notes]
        return '\n'.join(lines)


def infer_resnet_depth(keys: Iterable[str]) -> int:
    """Depth of a ResNet from the names of its state-dict entries.

    Args:
        keys (Iterable[str]): Keys in mmpretrain/torchvision naming, without
            a prefix (``layer1.0.conv1.weight``, ...).

    Returns:
        int: One of the depths in :data:`RESNET_LAYOUTS`.

    Raises:
        ValueError: The blocks found match no standard ResNet.
    """
    blocks: Dict[int, set] = {}
    bottleneck = False
    for key in keys:
        match = _BLOCK_KEY.match(key)
        if match:
            blocks.setdefault(int(match.group(1)), set()).add(
                int(match.group(2)))
            bottleneck = bottleneck or '.conv3.' in key
    stages = tuple(len(blocks[s]) for s in sorted(blocks))
    block = 'bottleneck' if bottleneck else 'basic'
    for depth, layout in RESNET_LAYOUTS.items():
        if layout == (block, stages):
            return depth
    raise ValueError(f'The checkpoint holds a ResNet with {block} blocks '
                     f'{stages} per stage, which matches no ResNet depth '
                     f'({sorted(RESNET_LAYOUTS)}).')


def check_resnet_depth(found: int, expected: Optional[int]) -> None:
    """Fail when the checkpoint's depth is not the one asked for.

    Args:
        found (int): Depth inferred from the checkpoint.
        expected (int, optional): Depth asked for; None accepts any.

    Raises:
        ValueError: The depths differ.
    """
    if expected is not None and found != expected:
        block, stages = RESNET_LAYOUTS[found]
        raise ValueError(
            f'Depth mismatch: the checkpoint holds a ResNet-{found} '
            f'({block} blocks {stages}), but ResNet-{expected} was requested. '
            f'Use depth={found} (--depth {found}) or a config with '
            f'depth={found}.')


def unwrap_state_dict(checkpoint: Mapping[str, Any]) -> Dict[str, Any]:
    """The state dict inside a loaded checkpoint file.

    Args:
        checkpoint (Mapping): A loaded file: a dict with ``state_dict`` (or
            ``model``), or a bare state dict.

    Returns:
        dict: Key to tensor.
    """
    for key in ('state_dict', 'model'):
        inner = checkpoint.get(key)
        if isinstance(inner, Mapping):
            return dict(inner)
    return dict(checkpoint)


def save_converted(state_dict: Mapping[str, torch.Tensor], path: str,
                   meta: Optional[dict] = None) -> None:
    """Write a converted checkpoint as ``{'meta': ..., 'state_dict': ...}``.

    Args:
        state_dict (Mapping): Converted weights.
        path (str): Output file.
        meta (dict, optional): Provenance. Defaults to None.
    """
    torch.save({'meta': dict(meta or {}), 'state_dict': dict(state_dict)},
               path)
