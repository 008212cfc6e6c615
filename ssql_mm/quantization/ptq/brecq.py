r"""BRECQ: block-wise reconstruction of learned rounding and step sizes.

Li et al., *BRECQ: Pushing the Limit of Post-Training Quantization by Block
Reconstruction*, ICLR 2021 (https://arxiv.org/abs/2102.05426).

Units are the residual blocks (mmpretrain ``BasicBlock`` / ``Bottleneck``
instances holding an active quantizer) and every quantized layer outside a
block (the stem convs, the projector's or neck's linears), each its own
unit. A unit's output (its forward output, whatever quantizers it holds) is
reconstructed from its input in the quantized model (previous units with
their learned rounding and steps) against the float model's output of that
unit (see :mod:`.reconstruction`). Within the unit, every quantized weight
gets AdaRound's learned rounding (:mod:`.adaround`) and every active
activation quantizer (layer inputs and any block-level quantizer) a learned
step size :math:`s`, LSQ-style (Esser et al., ICLR 2020): with the zero
point :math:`z` of the calibrated range fixed,

.. math::
    \hat x = (\mathrm{clamp}(\lfloor x / s \rceil + z, 0, 2^b - 1) - z)\, s,

where :math:`\lfloor\cdot\rceil` rounds half to even with a straight-through
gradient, so :math:`s` gets LSQ's gradient (Adam makes LSQ's gradient scale
irrelevant). :math:`s = s_0 r` is learned relative to the calibrated scale
:math:`s_0` (Adam on :math:`r`, from 1) and written back as the frozen range
:math:`[-z s, (2^b - 1 - z) s]`, which gives the same scale and zero point.

Differences from the paper: the loss is the plain squared error of the
unit's output (BRECQ weights it by the Fisher information, which needs
labels; the calibration data here are unlabeled); rounding and step sizes
are learned together in one pass, as in QDrop's code, instead of two
passes; the step sizes are learned relative to their calibrated values
(BRECQ learns the step itself); the defaults are scaled down to run on a
CPU (see :class:`BRECQ`).
"""
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

import torch
from mmpretrain.models.backbones.resnet import BasicBlock, Bottleneck
from torch import Tensor, nn

from ..convert import quant_layers
from ..fake_quantize import (ActivationFakeQuantize, _FakeQuantize,
                             activation_qparams)
from .adaround import rounding_learners
from .reconstruction import Learner, Reconstruction, _check_positive

__all__ = ['BLOCK_TYPES', 'LearnedStep', 'step_learners', 'block_units',
           'BRECQ']

BLOCK_TYPES = (BasicBlock, Bottleneck)
"""Module types reconstructed as one unit."""

_TINY = torch.finfo(torch.float32).tiny


def _round_ste(x: Tensor) -> Tensor:
    return x + (torch.round(x) - x).detach()


class LearnedStep(Learner):
    """LSQ-style learned step size of one activation quantizer.

    The step is learned relative to its calibrated value :math:`s_0`
    (:math:`s = s_0 r`, Adam on :math:`r` from 1), so that one learning rate
    moves small 8-bit steps and large 2-bit steps alike.

    Args:
        quantizer (ActivationFakeQuantize): A quantizer with a frozen,
            non-degenerate range.
        lr (float): Adam learning rate of :math:`r` (annealed to 0 with a
            cosine over the iterations).
    """

    def __init__(self, quantizer: ActivationFakeQuantize, lr: float) -> None:
        super().__init__(quantizer)
        self.lr = lr
        observer = quantizer.observer
        scale, zero_point, _ = activation_qparams(
            observer.min_val, observer.max_val, quantizer.bits)
        self.initial_scale = scale
        self.ratio = nn.Parameter(torch.ones_like(scale))
        self.zero_point = zero_point.float()
        self.qmax = 2**quantizer.bits - 1

    @property
    def scale(self) -> Tensor:
        """The current step size."""
        return (self.initial_scale * self.ratio).clamp(min=_TINY)

    def quantize(self, x: Tensor) -> Tensor:
        s = self.scale
        codes = torch.clamp(_round_ste(x / s) + self.zero_point, 0, self.qmax)
        return (codes - self.zero_point) * s

    def param_groups(self) -> List[Dict[str, Any]]:
        return [dict(params=[self.ratio], lr=self.lr, cosine=True)]

    @torch.no_grad()
    def bake(self) -> None:
        s = self.scale
        self.quantizer.set_range(-self.zero_point * s,
                                 (self.qmax - self.zero_point) * s)


def _learnable(quantizer: ActivationFakeQuantize) -> bool:
    if quantizer.bits is None or not quantizer.frozen:
        return False
    observer = quantizer.observer
    _, _, degenerate = activation_qparams(observer.min_val, observer.max_val,
                                          quantizer.bits)
    return not bool(degenerate)


def step_learners(unit: nn.Module, lr: float,
                  step_cls: type = LearnedStep, **kwargs) -> List[Learner]:
    """A learned step for every active activation quantizer in ``unit``.

    Args:
        unit (nn.Module): A layer or a block.
        lr (float): Adam learning rate of the steps.
        step_cls (type): The learner class. Defaults to LearnedStep.
        **kwargs: Further arguments of ``step_cls``.

    Returns:
        list[Learner]: The learners, attached and inactive.
    """
    return [
        step_cls(q, lr, **kwargs) for q in unit.modules()
        if isinstance(q, ActivationFakeQuantize) and _learnable(q)
    ]


def block_units(model: nn.Module) -> List[Tuple[str, nn.Module]]:
    """Residual blocks holding an active quantizer, then every quantized
    layer outside a block with an active quantizer.

    Args:
        model (nn.Module): The model.

    Returns:
        list[tuple[str, nn.Module]]: ``(name, module)`` pairs.
    """

    def active(module: nn.Module) -> bool:
        return any(q.bits is not None for q in module.modules()
                   if isinstance(q, _FakeQuantize))

    blocks = [(name, m) for name, m in model.named_modules()
              if isinstance(m, BLOCK_TYPES) and active(m)]
    inside = tuple(f'{name}.' for name, _ in blocks)
    layers = [(name, layer) for name, layer in quant_layers(model)
              if not name.startswith(inside) and active(layer)]
    return blocks + layers


@dataclass
class BRECQ(Reconstruction):
    """BRECQ, block-wise (see the module docstring).

    Defaults (paper's code in brackets): 400 iterations per unit [20,000],
    256 images [1,024], batch 32 [32], Adam lr 1e-2 [1e-3] for the rounding
    variables and 1e-3 for the step sizes relative to their calibrated
    values [4e-5 on the step itself], cosine-annealed to 0,
    :math:`\\lambda = 0.01` [0.01], :math:`\\beta` 20 → 2 [20 → 2] after a
    warm-up of 20 % [20 %], seed 0. The rounding learning rate is ten times
    the paper's because the iterations are fifty times fewer.

    Args:
        act_lr (float): Adam learning rate of the relative step sizes.
        Others: see :class:`~.reconstruction.Reconstruction`.
    """
    act_lr: float = 1e-3

    name = 'brecq'

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_positive('act_lr', self.act_lr, float)

    def units(self, model: nn.Module) -> List[Tuple[str, nn.Module]]:
        return block_units(model)

    def learners(self, unit: nn.Module) -> List[Learner]:
        return rounding_learners(unit, self) + step_learners(unit, self.act_lr)
