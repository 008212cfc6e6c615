"""What a checkpoint conversion or export did with each source key."""
from dataclasses import dataclass, field
from typing import Dict, List, Optional

__all__ = ['ConversionReport']


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

    @property
    def renamed(self) -> Dict[str, str]:
        """The mapped keys whose name changed beyond losing a prefix."""
        return {k: v for k, v in self.mapped.items()
                if k != v and not k.endswith('.' + v)}

    def summary(self, max_keys: int = 10) -> str:
        """Human-readable summary, dropped keys grouped by reason.

        Args:
            max_keys (int): Keys listed per group before eliding.
                Defaults to 10.

        Returns:
            str: Several lines of text.
        """
        lines = [f'mapped {len(self.mapped)} keys'
                 + (f' (ResNet-{self.depth})' if self.depth else '')
                 + (f', {len(self.renamed)} renamed' if self.renamed else '')]
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
