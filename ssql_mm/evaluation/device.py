"""The torch device a tool's ``--device`` names, checked before any work."""
from typing import Optional

import torch

__all__ = ['resolve_device']


def _why_no_cuda() -> str:
    """Why ``torch.cuda`` offers no device: the build, or the machine."""
    if torch.version.cuda is None and getattr(torch.version, 'hip',
                                              None) is None:
        return (f'no CUDA device: this torch build ({torch.__version__}) '
                'has no CUDA support')
    return ('no CUDA device is visible (no GPU or driver, or '
            'CUDA_VISIBLE_DEVICES hides them)')


def resolve_device(name: Optional[str] = None) -> torch.device:
    """The device ``name`` names, refused unless this machine has it.

    Args:
        name (str, optional): ``'cpu'``, ``'cuda'``, ``'cuda:1'``, ...
            Defaults to None: ``cuda`` when available, else ``cpu``.

    Returns:
        torch.device: The device.

    Raises:
        ValueError: Not a device name, or a device this machine lacks; the
            message lists the ones it has, or says why there is none.
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
            raise ValueError(f'--device {name}: {_why_no_cuda()}; use '
                             '--device cpu.')
        if device.index is not None and device.index >= count:
            have = ('1 CUDA device, cuda:0' if count == 1 else
                    f'{count} CUDA devices, cuda:0 to cuda:{count - 1}')
            raise ValueError(f'--device {name}: this machine has {have}; '
                             'pick one of them or cpu.')
    elif device.type == 'mps' and not torch.backends.mps.is_available():
        raise ValueError(f'--device {name}: MPS is not available on this '
                         'machine; use --device cpu.')
    elif device.type not in ('cpu', 'cuda', 'mps'):
        raise ValueError(f'--device {name}: ssql_mm runs on cpu, cuda or '
                         'mps devices.')
    return device
