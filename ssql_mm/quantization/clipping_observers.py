"""Observers that clip rare extremes: percentile, MSE-optimal and KL (TensorRT).

Each keeps a :class:`~.histogram.Histogram` of every value it sees (per
tensor, for activations) and turns it into a range in
:meth:`~.observers.Observer.calculate_range`, which the fake quantizer calls
for its current bit-width when it first reads the range and when the range
is frozen. Until then ``min_val`` / ``max_val`` hold the raw extremes; a
quantizer that is off (bits None) keeps them.

Accuracy is bounded by the histogram: a range can be placed no finer than
``(max - min) / bins`` of the data seen; raise ``bins`` when a few huge
outliers squeeze the bulk of the data into a handful of bins.

In distributed calibration every rank clips its own histogram; the
calibration hook then takes the widest range over ranks.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

from .fake_quantize import fake_quantize_activation, fake_quantize_weight
from .histogram import Histogram
from .observers import Observer, minmax_per_channel

__all__ = [
    'HistogramObserver', 'PercentileObserver', 'MSEObserver', 'KLObserver',
    'mse_weight_clip', 'kl_threshold'
]


def _check_grid(grid: int) -> int:
    if not isinstance(grid, int) or grid < 2:
        raise ValueError(f'The search grid needs an int >= 2 points, got {grid!r}.')
    return grid


class HistogramObserver(Observer):
    """Base of the observers that derive a clipped range from a histogram.

    Args:
        bins (int): Histogram bins. Defaults to 2048.
    """

    def __init__(self, bins: int = 2048) -> None:
        super().__init__(ch_axis=None)
        self.bins = bins
        self.histogram = Histogram(bins)
        self._stale = False
        self._range_bits: Optional[int] = None

    def reset(self) -> None:
        super().reset()
        self.histogram = Histogram(self.bins)
        self._stale = False

    def _observe(self, x: Tensor) -> None:
        self.histogram.add(x)
        self._store(self.histogram.low, self.histogram.high)
        self._stale = True

    def _store(self, low: float, high: float) -> None:
        device = self.min_val.device
        self.min_val = torch.tensor(low, dtype=torch.float32, device=device)
        self.max_val = torch.tensor(high, dtype=torch.float32, device=device)

    def calculate_range(self, bits: Optional[int]) -> None:
        """Clip the histogram's range for a quantizer at ``bits``.

        Args:
            bits (int, optional): Bit-width; None keeps the raw extremes.
        """
        if self.histogram.counts is None or (not self._stale
                                             and bits == self._range_bits):
            return
        hist = self.histogram
        if bits is None or hist.high == hist.low:
            low, high = hist.low, hist.high
        else:
            low, high = self._clip(bits)
        self._store(low, high)
        self._stale = False
        self._range_bits = bits

    def _clip(self, bits: int) -> Tuple[float, float]:
        raise NotImplementedError

    def set_range(self, min_val: Tensor, max_val: Tensor) -> None:
        super().set_range(min_val, max_val)
        self.histogram = Histogram(self.bins)
        self._stale = False

    def extra_repr(self) -> str:
        return f'bins={self.bins}'


class PercentileObserver(HistogramObserver):
    """Range from the ``(100 - p)``-th to the ``p``-th percentile of the data.

    The ``(100 - p)`` percent of values beyond each end saturate. The range
    does not depend on the bit-width. For post-ReLU inputs the lower end is
    0 (and the quantizer includes 0 in any range).

    Args:
        percentile (float): ``p``, in (50, 100]. Defaults to 99.99.
        bins (int): Histogram bins. Defaults to 2048.
    """

    def __init__(self, percentile: float = 99.99, bins: int = 2048) -> None:
        if not 50. < percentile <= 100.:
            raise ValueError('percentile must be in (50, 100], got '
                             f'{percentile}.')
        super().__init__(bins)
        self.percentile = percentile

    def _clip(self, bits: int) -> Tuple[float, float]:
        q = self.percentile / 100.
        return self.histogram.quantile(1. - q), self.histogram.quantile(q)

    def extra_repr(self) -> str:
        return f'percentile={self.percentile}, ' + super().extra_repr()


class MSEObserver(HistogramObserver):
    r"""Range with the least mean squared quantization error.

    Candidates scale the observed range (widened to contain 0, as the
    quantizer does) by :math:`\alpha \in \{1, 1 - 1/G, \ldots, 1/G\}`; the
    chosen one minimises :math:`\sum_x (x - Q_\alpha(x))^2` over the
    histogram, each bin represented by ``subsamples`` evenly spaced points
    (uniform density inside a bin) and :math:`Q_\alpha` the activation
    fake quantizer at the current bits. Exact zeros are left out: the
    quantizer represents 0 exactly. Ties keep the wider range.

    Calibrating with this observer also chooses weight ranges per output
    channel, on the weight itself (:func:`mse_weight_clip`), unless
    ``weights`` is False.

    Args:
        grid (int): Number of candidates ``G``. Defaults to 100.
        bins (int): Histogram bins. Defaults to 2048.
        subsamples (int): Points per bin. Defaults to 8.
        weights (bool): Also clip the weights per channel; False keeps
            ``max |w_c|`` (``'mse:weights=false'``). Defaults to True.
    """

    def __init__(self, grid: int = 100, bins: int = 2048,
                 subsamples: int = 8, weights: bool = True) -> None:
        super().__init__(bins)
        self.grid = _check_grid(grid)
        if not isinstance(subsamples, int) or subsamples < 1:
            raise ValueError(f'subsamples must be an int >= 1, got {subsamples!r}.')
        if not isinstance(weights, bool):
            raise ValueError(f'weights must be true or false, got {weights!r}.')
        self.subsamples = subsamples
        self.clips_weights = weights

    def _clip(self, bits: int) -> Tuple[float, float]:
        hist = self.histogram
        k = self.subsamples
        edges = hist.edges
        width = float(edges[1] - edges[0])
        offsets = (torch.arange(k, dtype=torch.float64) + 0.5) / k * width
        points = (edges[:-1, None] + offsets[None, :]).flatten()
        weights = (hist.nonzero_counts()[:, None] / k).expand(-1, k).flatten()
        points32 = points.float()
        low, high = min(hist.low, 0.), max(hist.high, 0.)
        best, best_err = (low, high), float('inf')
        for step in range(self.grid, 0, -1):
            alpha = step / self.grid
            lo = torch.tensor(alpha * low)
            hi = torch.tensor(alpha * high)
            err = (points32 - fake_quantize_activation(points32, lo, hi, bits)
                   ).double().pow(2).mul(weights).sum()
            if float(err) < best_err:
                best, best_err = (float(lo), float(hi)), float(err)
        return best

    def weight_clip(self, weight: Tensor, bits: int, ch_axis: int) -> Tensor:
        """Per-channel MSE clipping values of a weight (see
        :func:`mse_weight_clip`), on this observer's grid."""
        return mse_weight_clip(weight, bits, ch_axis, self.grid)

    def extra_repr(self) -> str:
        return (f'grid={self.grid}, weights={self.clips_weights}, '
                + super().extra_repr())


@torch.no_grad()
def mse_weight_clip(weight: Tensor, bits: int, ch_axis: int = 0,
                    grid: int = 100) -> Tensor:
    r"""Per output channel, the symmetric clipping value with least squared error.

    Candidates are :math:`m_c = \alpha \max |w_c|` for
    :math:`\alpha \in \{1, 1 - 1/G, \ldots, 1/G\}`; each channel keeps the one
    minimising :math:`\sum (w_c - \hat w_c)^2` under the symmetric weight
    quantizer at ``bits``. Ties keep the wider range.

    Args:
        weight (Tensor): The float weight.
        bits (int): Bit-width.
        ch_axis (int): The output-channel axis. Defaults to 0.
        grid (int): Number of candidates ``G``. Defaults to 100.

    Returns:
        Tensor: float32 clipping values, one per channel.
    """
    _check_grid(grid)
    weight = weight.detach().float()
    low, high = minmax_per_channel(weight, ch_axis)
    max_abs = torch.maximum(low.abs(), high.abs()).float()
    best = max_abs.clone()
    best_err = torch.full_like(max_abs, float('inf'))
    flat = weight.transpose(0, ch_axis).reshape(weight.shape[ch_axis], -1)
    for step in range(grid, 0, -1):
        candidate = max_abs * (step / grid)
        quantized = fake_quantize_weight(weight, bits, ch_axis, candidate)
        err = (flat - quantized.transpose(0, ch_axis).reshape_as(flat)
               ).pow(2).sum(dim=1)
        better = err < best_err
        best = torch.where(better, candidate, best)
        best_err = torch.where(better, err, best_err)
    return best


def kl_threshold(hist: Tensor, levels: int, chunk: int = 256) -> int:
    """TensorRT's entropy calibration on a histogram of magnitudes.

    For every candidate ``i`` (bins kept, from ``levels`` to all), the
    reference P is ``hist[:i]`` with the mass of the clipped bins added to
    its last bin; the candidate Q merges ``hist[:i]`` into ``levels`` groups
    of ``i // levels`` bins (the last group takes the rest) and spreads each
    group's mass evenly over the group's bins where P is non-zero. The chosen
    ``i`` minimises KL(P || Q); bins where P > 0 and Q = 0 count with
    Q = 1e-10.

    Args:
        hist (Tensor): Counts of ``|x|`` in equal bins starting at 0.
        levels (int): Quantization levels on that side.
        chunk (int): Candidates evaluated at once (memory bound).
            Defaults to 256.

    Returns:
        int: The number of bins to keep; the threshold is its upper edge.
    """
    hist = hist.double().cpu()
    n = len(hist)
    if levels >= n:
        return n
    suffix = torch.cat([hist.flip(0).cumsum(0).flip(0),
                        torch.zeros(1, dtype=torch.float64)])
    j = torch.arange(n)
    best_i, best_kl = n, float('inf')
    for start in range(levels, n + 1, chunk):
        stop = min(start + chunk, n + 1)
        cands = torch.arange(start, stop)
        cols = j[:stop - 1]
        keep = cols[None, :] < cands[:, None]
        kept = torch.where(keep, hist[None, :stop - 1],
                           torch.zeros(()).double())
        p = kept.clone()
        rows = torch.arange(len(cands))
        p[rows, cands - 1] += suffix[cands]
        nonzero = (p > 0) & keep
        group = torch.minimum(cols[None, :] // (cands[:, None] // levels),
                              torch.tensor(levels - 1))
        group_mass = torch.zeros(len(cands), levels, dtype=torch.float64
                                 ).scatter_add_(1, group, kept)
        group_size = torch.zeros(len(cands), levels, dtype=torch.float64
                                 ).scatter_add_(1, group, nonzero.double())
        q = torch.where(nonzero,
                        group_mass.gather(1, group) /
                        group_size.gather(1, group).clamp(min=1.),
                        torch.zeros(()).double())
        p = p / p.sum(dim=1, keepdim=True)
        q = q / q.sum(dim=1, keepdim=True).clamp(min=1e-300)
        ratio = p / q.clamp(min=1e-10)
        kl = torch.where(nonzero, p * ratio.clamp(min=1e-300).log(),
                         torch.zeros(()).double()).sum(dim=1)
        idx = int(kl.argmin())
        if float(kl[idx]) < best_kl:
            best_i, best_kl = int(cands[idx]), float(kl[idx])
    return best_i


class KLObserver(HistogramObserver):
    """Range that minimises the KL divergence of the quantized distribution
    (TensorRT's entropy calibration, :func:`kl_threshold`).

    The histogram of magnitudes ``|x|`` over ``[0, max |x|]`` (``bins``
    bins) is searched for a threshold ``T``, with ``2^b`` levels when the
    data are non-negative (range ``[0, T]``) and ``2^(b-1)`` levels per side
    otherwise (range ``[-T, T]``, each end no wider than the data).

    Deviation from TensorRT: exact zeros are left out of the histogram. The
    quantizer represents 0 exactly, and after a ReLU half of the values are
    0: kept in, that spike outweighs every other bin and the search picks
    the smallest candidate whose groups are single bins.

    Args:
        bins (int): Histogram bins. Defaults to 2048.
    """

    def _clip(self, bits: int) -> Tuple[float, float]:
        hist = self.histogram
        top = max(abs(hist.low), abs(hist.high))
        edges = torch.linspace(0., top, self.bins + 1, dtype=torch.float64)
        non_negative = hist.low >= 0
        if non_negative:
            magnitudes = hist.cdf(edges, drop_zeros=True).diff()
            levels = 2**bits
        else:
            magnitudes = (hist.cdf(edges, drop_zeros=True) -
                          hist.cdf(-edges, drop_zeros=True)).diff()
            levels = 2**(bits - 1)
        threshold = kl_threshold(magnitudes, levels) * top / self.bins
        if non_negative:
            return hist.low, min(hist.high, threshold)
        return max(hist.low, -threshold), min(hist.high, threshold)
