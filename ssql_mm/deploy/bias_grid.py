r"""Move a model's biases onto the int32 grid its QDQ export stores them on.

An integer kernel adds the bias to its int32 accumulator, so the export
stores a quantized layer's (BatchNorm-folded) bias as int32 codes with scale
:math:`s_x s_{w,c}` (:func:`~ssql_mm.deploy.encoding.quantize_bias`),
rounding it by up to half an accumulator step. onnxruntime does the same to
a float bias when it fuses the layer into ``QLinearConv``, so the rounding
cannot be left out of the graph. It is the one place where the graph departs
from the fake-quantized model by construction, and under the ``integer``
placement it is the main source of code flips between the two: it moves a
conv output by up to ~2e-3 of the next quantizer's step (8w8a, CIFAR
ResNet-18), which lands the values that close to a rounding tie on the
neighbouring code, and every flipped code moves the next layer's values by a
sizeable fraction of a step, so flips multiply block by block.

:func:`snap_biases` makes the PyTorch model compute what the graph computes:
it adds the export's rounding to each such layer's bias (the shift
:math:`\beta_c` of the BatchNorm folded into it, or the layer's own bias), so
the folded bias equals ``bias_codes * bias_scale``. The exported graph does
not change (the codes are the same); the model moves by at most half an
accumulator step per channel, as the integer model does.
"""
from typing import Dict

import numpy as np
import torch
from torch import nn

from .qdq_export import traced_layers

__all__ = ['snap_biases']


@torch.no_grad()
def snap_biases(model: nn.Module) -> Dict[str, float]:
    """Move ``model``'s biases onto their exported int32 grid, in place.

    Layers whose bias the export keeps in float (no quantized weight or
    input, or codes beyond int32) and BatchNorms without an affine shift are
    left as they are.

    Args:
        model (nn.Module): The calibrated model, as it will be exported.

    Returns:
        dict[str, float]: Per snapped layer, the largest move over its
        channels in accumulator steps (at most 0.5; about 0 for a model
        snapped before).
    """
    modules = dict(model.named_modules())
    moves = {}
    for layer in traced_layers(model):
        enc = layer.encoding
        owner = modules[layer.bn if layer.bn is not None else layer.name]
        if enc.integer_bias is None or owner.bias is None:
            continue
        delta = torch.from_numpy(
            enc.integer_bias.astype(np.float64) - enc.bias.astype(np.float64))
        owner.bias.add_(delta.to(owner.bias))
        steps = delta.abs() / torch.from_numpy(enc.bias_scale).double().abs()
        moves[layer.name] = float(steps.max())
    return moves
