"""Observers: the statistics side of quantization (what range did a tensor span).

An observer is an identity in the forward pass that records statistics of
the tensors it sees; :meth:`Observer.calculate_range` turns them into the
range ``[min_val, max_val]`` that a fake quantizer reads. This module holds
the base class and the running min/max observers (plain and EMA), which
track their range at every forward; the clipping observers (percentile,
MSE, KL) live in :mod:`.clipping_observers`, the name -> class mapping in
:mod:`.observer_registry`.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor, nn

__all__ = [
    'minmax', 'minmax_per_channel', 'Observer', 'MinMaxObserver',
    'EMAMinMaxObserver'
]


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


class Observer(nn.Module):
    """Base of all observers: an identity that records statistics.

    The range lives in the non-persistent buffers ``min_val`` / ``max_val``
    (it describes data seen, not a learned parameter). Subclasses implement
    :meth:`_observe`; those whose range depends on the bit-width it will be
    quantized at (MSE, KL) also override :meth:`calculate_range`.

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
        """Forget every statistic and range recorded so far."""
        self.min_val = torch.full_like(self.min_val, float('inf'))
        self.max_val = torch.full_like(self.max_val, float('-inf'))
        self.has_data = False

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        """Record ``x`` and return it unchanged."""
        self._observe(x.detach())
        self.has_data = True
        return x

    def _observe(self, x: Tensor) -> None:
        raise NotImplementedError

    def _extremes(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Min and max of ``x``, per tensor or per channel, in float32."""
        if self.ch_axis is None:
            low, high = minmax(x)
        else:
            low, high = minmax_per_channel(x, self.ch_axis)
        return low.float(), high.float()

    def calculate_range(self, bits: Optional[int]) -> None:
        """Turn the statistics into the range for a quantizer at ``bits``.

        Running observers keep their range current at every forward, so
        this is a no-op for them.

        Args:
            bits (int, optional): Bit-width the range will be used at; None
                when the quantizer is off.
        """

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


class MinMaxObserver(Observer):
    """Records the running min/max of every tensor passed through it.

    The range is exactly ``[min x, max x]`` over everything seen since the
    last reset: SSQL's per-step ranges and the default calibration.

    Args:
        ch_axis (int, optional): Channel axis for per-channel statistics, or
            None for one range over the whole tensor. Defaults to None.
    """

    def _observe(self, x: Tensor) -> None:
        low, high = self._extremes(x)
        if self.has_data:
            low = torch.minimum(self.min_val, low)
            high = torch.maximum(self.max_val, high)
        self.min_val, self.max_val = low, high


class EMAMinMaxObserver(Observer):
    r"""Exponential moving average of every batch's min/max.

    The first batch sets the range; every later batch moves it:

    .. math::
        \min \leftarrow m \min + (1 - m) \min_{batch},\quad
        \max \leftarrow m \max + (1 - m) \max_{batch}.

    A single extreme batch moves the range by only ``1 - m`` of its excess,
    so rare outlier batches are damped; a range seen on every batch is kept.

    Args:
        momentum (float): Weight ``m`` of the previous range, in [0, 1).
            Defaults to 0.9.
        ch_axis (int, optional): Channel axis for per-channel statistics, or
            None for one range over the whole tensor. Defaults to None.
    """

    def __init__(self, momentum: float = 0.9,
                 ch_axis: Optional[int] = None) -> None:
        if not 0. <= momentum < 1.:
            raise ValueError(f'EMA momentum must be in [0, 1), got {momentum}.')
        super().__init__(ch_axis)
        self.momentum = momentum

    def _observe(self, x: Tensor) -> None:
        low, high = self._extremes(x)
        if self.has_data:
            m = self.momentum
            low = m * self.min_val + (1 - m) * low
            high = m * self.max_val + (1 - m) * high
        self.min_val, self.max_val = low, high

    def extra_repr(self) -> str:
        return super().extra_repr() + f', momentum={self.momentum}'
