r"""AdaRound: learned rounding of every weight, layer by layer.

Nagel et al., *Up or Down? Adaptive Rounding for Post-Training
Quantization*, ICML 2020 (https://arxiv.org/abs/2004.10568).

Each weight is quantized as

.. math::
    \tilde w = s \cdot \mathrm{clamp}(\lfloor w / s \rfloor + h(V),
    -2^{b-1}, 2^{b-1} - 1),\qquad
    h(V) = \mathrm{clip}(\sigma(V)(\zeta - \gamma) + \gamma, 0, 1),

with :math:`\zeta = 1.1`, :math:`\gamma = -0.1` (the rectified sigmoid) and
the scale :math:`s` of the weight quantizer (per output channel, from
``max |w_c|`` or the calibrated clipping value, e.g. MSE's), which stays
fixed. :math:`V` starts where :math:`h(V)` equals the fractional part of
:math:`w/s` (on the side of 0 that nearest rounding, half to even, takes),
so that hard rounding at the start is nearest rounding. The
loss adds the rounding regularizer

.. math::
    \lambda \sum_i 1 - |2 h(V_i) - 1|^{\beta}

once the warm-up is over, with :math:`\beta` decaying linearly from
``beta_start`` to ``beta_end``; it drives every :math:`h` to 0 or 1. At the
end rounding is hard, :math:`h = [V \ge 0]`, so every weight code is
:math:`\lfloor w/s \rfloor` or :math:`\lfloor w/s \rfloor + 1` (clamped to
the grid), and :math:`\tilde w` is written into the weight with its scale
frozen in the quantizer: nearest rounding of :math:`\tilde w / s` then gives
back the learned codes.

Units are the quantized layers (conv, linear) whose weight is quantized.
Each layer's output (before BatchNorm / ReLU) is reconstructed from its
input in the quantized model (previous layers with learned rounding,
activations quantized at their calibrated ranges, including this layer's
own input quantizer), against the float model's output of that layer.
Activation ranges are not learned (see BRECQ).

Differences from the paper: the reconstructed output is the layer's own
output (the paper allows the following activation function inside the
loss); the regularizer's weight applies to the loss of
:class:`~.reconstruction.Reconstruction` (squared error summed over
channels), as in BRECQ's code; defaults are scaled down to run on a CPU
(see :class:`AdaRound`).
"""
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from ..convert import quant_layers
from ..fake_quantize import WeightFakeQuantize, weight_qparams
from ..observers import minmax_per_channel
from .reconstruction import Learner, Reconstruction

__all__ = [
    'ZETA', 'GAMMA', 'rectified_sigmoid', 'rectified_sigmoid_inverse',
    'rounding_regularizer', 'annealed_beta', 'LearnedRounding',
    'rounding_learners', 'AdaRound'
]

ZETA = 1.1
GAMMA = -0.1


def rectified_sigmoid(v: Tensor) -> Tensor:
    r""":math:`h(V) = \mathrm{clip}(\sigma(V)(\zeta - \gamma) + \gamma, 0, 1)`."""
    return torch.clamp(torch.sigmoid(v) * (ZETA - GAMMA) + GAMMA, 0, 1)


def rectified_sigmoid_inverse(h: Tensor) -> Tensor:
    r"""The :math:`V` with :math:`h(V) = h`, for :math:`h \in [0, 1)`."""
    return -torch.log((ZETA - GAMMA) / (h - GAMMA) - 1)


def rounding_regularizer(h: Tensor, beta: float) -> Tensor:
    r""":math:`\sum_i 1 - |2 h_i - 1|^{\beta}`: 0 when every :math:`h_i` is 0
    or 1, largest at 0.5."""
    return (1 - (2 * h - 1).abs().pow(beta)).sum()


def annealed_beta(step: int, iters: int, warmup: float, start: float,
                  end: float) -> Optional[float]:
    r"""The regularizer's exponent at ``step``: None during the warm-up
    (``step < warmup * iters``: no regularizer), then a linear decay from
    ``start`` at the end of the warm-up to ``end`` at ``step = iters``.

    Args:
        step (int): Iteration, from 0.
        iters (int): Total iterations.
        warmup (float): Fraction of ``iters`` without the regularizer.
        start (float): :math:`\beta` when the warm-up ends.
        end (float): :math:`\beta` at the end.

    Returns:
        float or None: :math:`\beta`.
    """
    first = warmup * iters
    if step < first:
        return None
    progress = (step - first) / max(iters - first, 1e-12)
    return end + (start - end) * max(0., 1. - progress)


class LearnedRounding(Learner):
    """AdaRound's rounding of one weight (see the module docstring).

    Args:
        quantizer (WeightFakeQuantize): The layer's weight quantizer, at
            the bits to learn.
        weight (nn.Parameter): The layer's weight.
        lr (float): Adam learning rate of :math:`V`.
        reconstruction (Reconstruction): Regularizer settings (weight, beta
            schedule, iterations).
    """

    def __init__(self, quantizer: WeightFakeQuantize, weight: nn.Parameter,
                 lr: float, reconstruction: Reconstruction) -> None:
        super().__init__(quantizer)
        self.weight = weight
        self.lr = lr
        self.settings = reconstruction
        bits, axis = quantizer.bits, quantizer.ch_axis
        w = weight.detach().float()
        max_abs = quantizer.clip_values(w)
        if max_abs is None:
            low, high = minmax_per_channel(w, axis)
            max_abs = torch.maximum(low.abs(), high.abs()).float()
        self.max_abs = max_abs
        scale, _ = weight_qparams(w, bits, axis, max_abs)
        shape = [1] * w.dim()
        shape[axis] = -1
        self.scale = scale.view(shape)
        ratio = w * (1. / self.scale)  # as torch's kernels compute it
        self.floor = torch.floor(ratio)
        v = rectified_sigmoid_inverse(ratio - self.floor)
        # Start exactly at the quantizer's rounding, half to even on ties
        # (the largest weight of a channel sits on one: max|w| / s = 2^b/2 - 1/2).
        up = torch.round(ratio) > self.floor
        self.v = nn.Parameter(
            torch.where(up, v.clamp(min=0.), v.clamp(max=-1e-6)))
        self.low, self.high = -2**(bits - 1), 2**(bits - 1) - 1

    def codes(self) -> Tensor:
        """Integer codes (soft while training, hard otherwise)."""
        h = rectified_sigmoid(self.v) if self.training else (
            self.v >= 0).to(self.floor.dtype)
        return torch.clamp(self.floor + h, self.low, self.high)

    def quantize(self, x: Tensor) -> Tensor:
        return (self.codes() * self.scale).to(x.dtype)

    def param_groups(self) -> List[Dict[str, Any]]:
        return [dict(params=[self.v], lr=self.lr)]

    def penalty(self, step: int) -> Optional[Tensor]:
        s = self.settings
        beta = annealed_beta(step, s.iters, s.warmup, s.beta_start,
                             s.beta_end)
        if beta is None:
            return None
        return s.reg_weight * rounding_regularizer(rectified_sigmoid(self.v),
                                                   beta)

    @torch.no_grad()
    def bake(self) -> None:
        self.training = False
        self.weight.copy_(self.quantize(self.weight))
        self.quantizer.freeze_max_abs(self.max_abs)


def rounding_learners(unit: nn.Module,
                      reconstruction: Reconstruction) -> List[Learner]:
    """A :class:`LearnedRounding` for every quantized weight in ``unit``.

    Args:
        unit (nn.Module): A layer or a block.
        reconstruction (Reconstruction): The method's settings (``lr``,
            regularizer).

    Returns:
        list[Learner]: The learners, attached and inactive.
    """
    return [
        LearnedRounding(layer.weight_quant, layer.weight, reconstruction.lr,
                        reconstruction)
        for _, layer in quant_layers(unit) if layer.weight_quant.bits is not None
    ]


@dataclass
class AdaRound(Reconstruction):
    """AdaRound, layer-wise (see the module docstring).

    Defaults (paper and BRECQ's code in brackets): 400 iterations per layer
    [20,000], 256 images [1,024], batch 32 [32], Adam lr 1e-2 [1e-3] for
    :math:`V`, :math:`\\lambda = 0.01` [0.01], :math:`\\beta` 20 → 2 [20 → 2]
    after a warm-up of 20 % of the iterations [20 %], seed 0. The learning
    rate is ten times the paper's because the iterations are fifty times
    fewer.

    Args: see :class:`~.reconstruction.Reconstruction`.
    """
    name = 'adaround'

    def units(self, model: nn.Module) -> List[Tuple[str, nn.Module]]:
        return [(name, layer) for name, layer in quant_layers(model)
                if layer.weight_quant.bits is not None]

    def learners(self, unit: nn.Module) -> List[Learner]:
        return rounding_learners(unit, self)
