"""Observers: the statistics side of quantization (what range did a tensor span)."""
from typing import Optional, Tuple

import torch
from torch import Tensor, nn

__all__ = ['minmax', 'minmax_per_channel', 'MinMaxObserver']


def minmax(x: Tensor) -> Tuple[Tensor, Tensor]:
    """Minimum and maximum of a whole tensor, in one fused reduction.

    Args:
        x (Tensor): Any tensor.

    Returns:
        tuple[Tensor, Tensor]: 0-dim minimum and maximum.
    """
    return torch.aminmax(x.detach())


def minmax_per_channel(x: Tensor, ch_axis: int = 0) -> Tuple[Tensor, Tensor]:
    """Minimum and maximum of every slice along ``ch_axis``.

    Args:
        x (Tensor): Tensor with at least one dimension.
        ch_axis (int): The channel axis. Defaults to 0.

    Returns:
        tuple[Tensor, Tensor]: 1-dim minima and maxima, one per channel.
    """
    x = x.detach()
    if ch_axis != 0:
        x = x.transpose(0, ch_axis)
    return torch.aminmax(x.reshape(x.shape[0], -1), dim=1)


class MinMaxObserver(nn.Module):
    """Records the running min/max of every tensor passed through it.

    The observer is an identity in the forward pass. Its state lives in
    non-persistent buffers: it describes data seen, not a learned parameter.

    Args:
        ch_axis (int, optional): Channel axis for per-channel statistics, or
            None for one range over the whole tensor. Defaults to None.
    """

    def __init__(self, ch_axis: Optional[int] = None) -> None:
        super().__init__()
        self.ch_axis = ch_axis
        self.register_buffer('min_val', torch.tensor(float('inf')), persistent=False)
        self.register_buffer('max_val', torch.tensor(float('-inf')), persistent=False)
        self.has_data = False

    def reset(self) -> None:
        """Forget every range recorded so far."""
        self.min_val.fill_(float('inf'))
        self.max_val.fill_(float('-inf'))
        self.has_data = False

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        """Update the range with ``x`` and return ``x`` unchanged."""
        if self.ch_axis is None:
            low, high = minmax(x)
        else:
            low, high = minmax_per_channel(x, self.ch_axis)
        if self.has_data:
            low = torch.minimum(self.min_val, low)
            high = torch.maximum(self.max_val, high)
        self.min_val, self.max_val = low.float(), high.float()
        self.has_data = True
        return x

    def set_range(self, min_val: Tensor, max_val: Tensor) -> None:
        """Overwrite the recorded range (used to restore a calibration).

        Args:
            min_val (Tensor): Minimum, same shape as the observer's statistics.
            max_val (Tensor): Maximum, same shape as ``min_val``.
        """
        self.min_val = min_val.detach().float().to(self.min_val.device)
        self.max_val = max_val.detach().float().to(self.max_val.device)
        self.has_data = True

    def extra_repr(self) -> str:
        return f'ch_axis={self.ch_axis}'
