"""Quantized twins of ``nn.Conv2d`` and ``nn.Linear``.

A quantized layer *is* the float layer plus two switchable fake quantizers:
``weight_quant`` (symmetric, per output channel) and ``input_quant``
(asymmetric, per tensor, on the layer's input, which is what an integer
kernel consumes). Parameter names and shapes are the float layer's, and
quantizer state is not persistent, so a quantized model's state dict has
exactly the keys of its float twin.
"""
from typing import Optional, Type, TypeVar

import torch.nn.functional as F
from torch import Tensor, nn

from .fake_quantize import ActivationFakeQuantize, WeightFakeQuantize

__all__ = ['QuantLayerMixin', 'QConv2d', 'QLinear']

_Float = TypeVar('_Float', nn.Conv2d, nn.Linear)


class QuantLayerMixin:
    """Adds the two fake quantizers and the float-to-quantized conversion."""

    weight_quant: WeightFakeQuantize
    input_quant: ActivationFakeQuantize

    def _init_quantizers(self, w_bits: Optional[int],
                         a_bits: Optional[int]) -> None:
        self.weight_quant = WeightFakeQuantize(w_bits)
        self.input_quant = ActivationFakeQuantize(a_bits)

    @classmethod
    def from_float(cls, float_layer: _Float, w_bits: Optional[int] = None,
                   a_bits: Optional[int] = None):
        """Build the quantized twin of ``float_layer`` sharing its parameters.

        No tensor is copied: the returned layer holds the very ``Parameter``
        objects of ``float_layer``, so optimizers built before the conversion
        keep working.

        Args:
            float_layer (nn.Conv2d | nn.Linear): The layer to convert.
            w_bits (int, optional): Weight bit-width. Defaults to None.
            a_bits (int, optional): Input bit-width. Defaults to None.

        Returns:
            QConv2d | QLinear: The quantized layer.
        """
        layer = cls.__new__(cls)
        # Take over the float layer's attributes (hyper-parameters,
        # parameters, buffers, hooks, training flag) without allocating.
        layer.__dict__.update(float_layer.__dict__)
        layer._parameters = dict(float_layer._parameters)
        layer._buffers = dict(float_layer._buffers)
        layer._modules = dict(float_layer._modules)
        layer._init_quantizers(w_bits, a_bits)
        if float_layer.weight is not None:
            layer.to(float_layer.weight.device)
        return layer

    def to_float(self):
        """Return the plain float layer, sharing this layer's parameters."""
        float_cls: Type[nn.Module] = self._float_cls
        layer = float_cls.__new__(float_cls)
        layer.__dict__.update(self.__dict__)
        layer._parameters = dict(self._parameters)
        layer._buffers = dict(self._buffers)
        layer._modules = {
            k: v for k, v in self._modules.items()
            if k not in ('weight_quant', 'input_quant')
        }
        return layer


class QConv2d(QuantLayerMixin, nn.Conv2d):
    """``nn.Conv2d`` with fake-quantized weight and input.

    Takes every argument of ``nn.Conv2d`` (so it can be passed as
    ``conv_cfg=dict(type=QConv2d)`` to mmcv / mmpretrain builders), plus:

    Args:
        w_bits (int, optional): Weight bit-width; 0/None for float.
            Defaults to None.
        a_bits (int, optional): Input bit-width; 0/None for float.
            Defaults to None.
    """
    _float_cls = nn.Conv2d

    def __init__(self, *args, w_bits: Optional[int] = None,
                 a_bits: Optional[int] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_quantizers(w_bits, a_bits)

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(
            self.input_quant(x), self.weight_quant(self.weight), self.bias)


class QLinear(QuantLayerMixin, nn.Linear):
    """``nn.Linear`` with fake-quantized weight and input.

    Args:
        w_bits (int, optional): Weight bit-width; 0/None for float.
            Defaults to None.
        a_bits (int, optional): Input bit-width; 0/None for float.
            Defaults to None.
        Other arguments are those of ``nn.Linear``.
    """
    _float_cls = nn.Linear

    def __init__(self, *args, w_bits: Optional[int] = None,
                 a_bits: Optional[int] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_quantizers(w_bits, a_bits)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(
            self.input_quant(x), self.weight_quant(self.weight), self.bias)
