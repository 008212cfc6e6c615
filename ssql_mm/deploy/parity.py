"""How closely a deployed model reproduces the fake-quantized PyTorch model."""
from dataclasses import asdict, dataclass

import numpy as np
import torch

__all__ = ['ParityStats', 'output_parity']


@dataclass
class ParityStats:
    """Element-wise agreement of two outputs.

    Args:
        step (float): One quantization step of the reference output:
            ``(max - min) / (2**bits - 1)`` over the compared elements.
        within_one_step (float): Fraction of elements whose absolute
            difference is at most ``step``.
        max_abs_diff (float): Largest absolute difference.
        mean_abs_diff (float): Mean absolute difference.
        num_elements (int): Elements compared.
    """
    step: float
    within_one_step: float
    max_abs_diff: float
    mean_abs_diff: float
    num_elements: int

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)


def output_parity(reference: torch.Tensor, deployed: torch.Tensor,
                  bits: int) -> ParityStats:
    """Compare a deployed output with the PyTorch fake-quant reference.

    The step is that of a ``bits``-bit quantizer spanning the reference's
    range, i.e. what one code is worth at the model's activation bit-width.

    Args:
        reference (Tensor): Output of the fake-quantized PyTorch model.
        deployed (Tensor): The same output from the deployed model.
        bits (int): Activation bit-width defining the step.

    Returns:
        ParityStats: The agreement.
    """
    ref = torch.as_tensor(np.asarray(reference)).double().flatten()
    out = torch.as_tensor(np.asarray(deployed)).double().flatten()
    if ref.shape != out.shape:
        raise ValueError(f'Cannot compare outputs of {ref.numel()} and '
                         f'{out.numel()} elements.')
    if ref.numel() == 0:
        raise ValueError('Cannot compare empty outputs.')
    step = float(ref.max() - ref.min()) / (2**bits - 1)
    diff = (ref - out).abs()
    return ParityStats(step, float((diff <= step).double().mean()),
                       float(diff.max()), float(diff.mean()), ref.numel())
