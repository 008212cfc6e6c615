"""A growing histogram of every value seen, for observers that clip ranges.

Values are counted in ``bins`` equal bins spanning the extremes seen so far.
When a new tensor reaches beyond them, the bins are widened to the new
extremes and the old counts are spread over the new bins assuming a uniform
density inside each old bin (linear interpolation of the cumulative
distribution), as in the usual calibration histograms. Exact zeros are
also counted on their own (the quantizer represents 0 exactly, so clipping
searches may leave them out). Counts are float64,
exact up to 2^53; a tensor is counted in chunks of at most 2^24 values, so
the float32 counting of ``torch.histc`` stays exact too.
"""
from typing import Optional

import torch
from torch import Tensor

__all__ = ['Histogram', 'interp']

_CHUNK = 2**24


def interp(x: Tensor, xp: Tensor, fp: Tensor) -> Tensor:
    """Piecewise-linear interpolation of ``fp(xp)`` at ``x`` (``numpy.interp``).

    Args:
        x (Tensor): Points to evaluate.
        xp (Tensor): Increasing sample points (1-dim, at least two).
        fp (Tensor): Values at ``xp``.

    Returns:
        Tensor: Interpolated values, clamped to ``fp[0]`` / ``fp[-1]``
        outside ``[xp[0], xp[-1]]``.
    """
    x = x.clamp(xp[0], xp[-1])
    idx = torch.searchsorted(xp, x, right=True).clamp(1, len(xp) - 1)
    x0, x1 = xp[idx - 1], xp[idx]
    y0, y1 = fp[idx - 1], fp[idx]
    width = x1 - x0
    t = torch.where(width > 0, (x - x0) / torch.where(width > 0, width, 1.),
                    torch.ones_like(x))
    return y0 + t * (y1 - y0)


class Histogram:
    """Counts of values in equal bins between the extremes seen so far.

    Args:
        bins (int): Number of bins. Defaults to 2048.
    """

    def __init__(self, bins: int = 2048) -> None:
        if not isinstance(bins, int) or bins < 8:
            raise ValueError(f'A histogram needs an int >= 8 bins, got {bins!r}.')
        self.bins = bins
        self.counts: Optional[Tensor] = None
        self.zeros = 0.
        self.low = 0.
        self.high = 0.

    @property
    def total(self) -> float:
        """Number of values counted."""
        return 0. if self.counts is None else float(self.counts.sum())

    @property
    def edges(self) -> Tensor:
        """The ``bins + 1`` bin edges (float64)."""
        return torch.linspace(self.low, self.high, self.bins + 1,
                              dtype=torch.float64)

    def add(self, x: Tensor) -> None:
        """Count every value of ``x`` (non-finite values are an error).

        Args:
            x (Tensor): Any tensor.
        """
        x = x.detach().flatten().float()
        if x.numel() == 0:
            return
        low, high = (float(v) for v in torch.aminmax(x))
        if not (torch.isfinite(torch.tensor([low, high])).all()):
            raise ValueError('Histogram observers need finite values; got '
                             'NaN or inf in the observed tensor.')
        self.zeros += float((x == 0).sum())
        if self.counts is None:
            self.low, self.high = low, high
            self.counts = torch.zeros(self.bins, dtype=torch.float64)
        elif low < self.low or high > self.high:
            self._widen(min(low, self.low), max(high, self.high))
        if self.high == self.low:  # every value so far is this one number
            self.counts[0] += x.numel()
            return
        for chunk in x.split(_CHUNK):
            self.counts += torch.histc(chunk, self.bins, self.low,
                                       self.high).double().cpu()

    def cdf(self, points: Tensor, drop_zeros: bool = False) -> Tensor:
        """Number of values below each point (uniform density inside a bin).

        Args:
            points (Tensor): Where to evaluate.
            drop_zeros (bool): Leave exact zeros out. Defaults to False.

        Returns:
            Tensor: float64 counts.
        """
        points = points.double()
        if self.counts is None:
            return torch.zeros_like(points)
        counts = self.nonzero_counts() if drop_zeros else self.counts
        if self.high == self.low:
            return torch.where(points >= self.low, float(counts.sum()),
                               0.).double()
        cum = torch.cat([torch.zeros(1, dtype=torch.float64),
                         counts.cumsum(0)])
        return interp(points, self.edges, cum)

    def quantile(self, q: float) -> float:
        """The value below which a fraction ``q`` of the counts lies.

        Args:
            q (float): Fraction in [0, 1].

        Returns:
            float: The quantile (linear inside its bin).
        """
        if self.counts is None:
            raise RuntimeError('quantile() of an empty histogram.')
        if self.high == self.low:
            return self.low
        cum = torch.cat([torch.zeros(1, dtype=torch.float64),
                         self.counts.cumsum(0)])
        target = torch.tensor([q * float(cum[-1])], dtype=torch.float64)
        # cum is non-decreasing; interpolating edges over it inverts the CDF.
        idx = torch.searchsorted(cum, target, right=False).clamp(1, self.bins)
        c0, c1 = cum[idx - 1], cum[idx]
        e0, e1 = self.edges[idx - 1], self.edges[idx]
        t = torch.where(c1 > c0, (target - c0) / torch.where(c1 > c0, c1 - c0, 1.),
                        torch.zeros_like(target))
        return float(e0 + t * (e1 - e0))

    def rebinned(self, low: float, high: float, bins: int) -> Tensor:
        """Counts in ``bins`` equal bins over ``[low, high]``.

        Values outside ``[low, high]`` are not counted.

        Args:
            low (float): First edge.
            high (float): Last edge, > ``low``.
            bins (int): Number of bins.

        Returns:
            Tensor: float64 counts.
        """
        edges = torch.linspace(low, high, bins + 1, dtype=torch.float64)
        return self.cdf(edges).diff()

    def nonzero_counts(self) -> Tensor:
        """The counts without the exact zeros (taken from the bin holding 0).

        Returns:
            Tensor: float64 counts.
        """
        counts = self.counts.clone()
        if self.zeros and self.low <= 0. <= self.high:
            index = self._bin_of(0.)
            counts[index] = (counts[index] - self.zeros).clamp(min=0.)
        return counts

    def _bin_of(self, value: float) -> int:
        if self.high == self.low:
            return 0
        index = int((value - self.low) / (self.high - self.low) * self.bins)
        return min(max(index, 0), self.bins - 1)

    def _widen(self, low: float, high: float) -> None:
        total = self.total
        if self.high == self.low:
            old = self.low
            self.low, self.high = low, high
            self.counts = torch.zeros(self.bins, dtype=torch.float64)
            self.counts[self._bin_of(old)] = total
            return
        counts = self.rebinned(low, high, self.bins)
        self.low, self.high = low, high
        self.counts = counts
