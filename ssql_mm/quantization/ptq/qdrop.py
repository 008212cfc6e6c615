r"""QDrop: BRECQ with activation quantization randomly dropped.

Wei et al., *QDrop: Randomly Dropping Quantization for Extremely Low-bit
Post-Training Quantization*, ICLR 2022 (https://arxiv.org/abs/2203.05740).

Exactly :class:`~.brecq.BRECQ` (same units, inputs, targets, loss and
learned parameters), except that while a unit is optimised each of its
active activation quantizers keeps every element of its input in float with
probability ``drop_prob``, independently per element and per step:

.. math::
    \hat x = \begin{cases} x & u < p \\ q_s(x) & \text{otherwise}
    \end{cases},\qquad u \sim U[0, 1).

Drops act only during optimisation; the reported losses, the inputs given
to later units and the baked model quantize every element. The drop draws
come from their own generator (seeded ``seed + 1``), so the image draws are
those of BRECQ, and ``drop_prob = 0`` gives BRECQ's result exactly.

Difference from the paper's code: the unit's input in the quantized model
is not mixed with the float model's input; the drop at the unit's own input
quantizer keeps elements of the quantized model's (unquantized) input
instead.
"""
from dataclasses import dataclass
from typing import List, Optional

import torch
from torch import Tensor, nn

from ..fake_quantize import ActivationFakeQuantize
from .adaround import rounding_learners
from .brecq import BRECQ, LearnedStep, step_learners
from .reconstruction import Learner, _check_unit_interval

__all__ = ['DroppedStep', 'QDrop']


class DroppedStep(LearnedStep):
    """A :class:`~.brecq.LearnedStep` whose quantization is dropped element
    by element with probability ``drop_prob`` while training.

    Args:
        quantizer (ActivationFakeQuantize): See LearnedStep.
        lr (float): See LearnedStep.
        drop_prob (float): Probability of keeping an element in float.
        generator (torch.Generator): Source of the drops, on the model's
            device.
    """

    def __init__(self, quantizer: ActivationFakeQuantize, lr: float,
                 drop_prob: float, generator: torch.Generator) -> None:
        super().__init__(quantizer, lr)
        self.drop_prob = drop_prob
        self.generator = generator

    def quantize(self, x: Tensor) -> Tensor:
        out = super().quantize(x)
        if not self.training or self.drop_prob == 0:
            return out
        keep_float = torch.rand(x.shape, generator=self.generator,
                                device=x.device) < self.drop_prob
        return torch.where(keep_float, x, out)


@dataclass
class QDrop(BRECQ):
    """QDrop (see the module docstring); defaults those of
    :class:`~.brecq.BRECQ`, plus ``drop_prob`` 0.5 [0.5].

    Args:
        drop_prob (float): Probability, in [0, 1], that an activation
            element skips quantization during optimisation.
        Others: see :class:`~.brecq.BRECQ`.
    """
    drop_prob: float = 0.5

    name = 'qdrop'

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_unit_interval('drop_prob', self.drop_prob, high_open=False)
        self._generator: Optional[torch.Generator] = None

    def start(self, model: nn.Module) -> None:
        device = next(model.parameters()).device
        self._generator = torch.Generator(device=device).manual_seed(
            self.seed + 1)

    def learners(self, unit: nn.Module) -> List[Learner]:
        return rounding_learners(unit, self) + step_learners(
            unit, self.act_lr, DroppedStep, drop_prob=self.drop_prob,
            generator=self._generator)
