"""The torch device a tool's ``--device`` names, checked before any work."""
from typing import Optional

import torch

__all__ = ['resolve_device']


def resolve_device(name: Optional[str] = None) -> torch.device:
    """The device ``name`` names, refused unless this machine has it.

    Args:
        name (str, optional): ``'cpu'``, ``'cuda'``, ``'cuda:1'``, ...
            Defaults to None: ``cuda`` when available, else ``cpu``.

    Returns:
        torch.device: The device.

    Raises:
        ValueError: Not a device name, or a device this machine lacks; the
            message lists the ones it has.
    """
    if name is None:
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device {name!r} is not a device name; use "
                         "'cpu', 'cuda' or 'cuda:N'.") from None
    if device.type == 'cuda':
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f'--device {name}: this machine has no usable '
                             'CUDA device; use --device cpu.')
        if device.index is not None and device.index >= count:
            raise ValueError(
                f'--device {name}: this machine has {count} CUDA '
                f'device(s), cuda:0 to cuda:{count - 1}; pick one of them '
                'or cpu.')
    elif device.type == 'mps' and not torch.backends.mps.is_available():
        raise ValueError(f'--device {name}: MPS is not available on this '
                         'machine; use --device cpu.')
    elif device.type not in ('cpu', 'cuda', 'mps'):
        raise ValueError(f'--device {name}: ssql_mm runs on cpu, cuda or '
                         'mps devices.')
    return device
