"""ResNet backbones whose convs run fake-quantized at fixed bit-widths."""
from typing import List, Optional

from mmpretrain.models.backbones import (ResNet, ResNet_CIFAR, ResNetV1c,
                                         ResNetV1d)
from mmpretrain.registry import MODELS

from ssql_mm.quantization import (QuantMode, apply_overrides, check_bits,
                                  get_bits, paper_backbone_overrides,
                                  quantize_model, set_quant_mode)

from .pretrained_check import strict_pretrained

__all__ = [
    'QuantBackboneMixin', 'QuantResNet', 'QuantResNet_CIFAR',
    'QuantResNetV1c', 'QuantResNetV1d'
]


class QuantBackboneMixin:
    """Converts a freshly built float backbone into a quantized one.

    The backbone keeps the float state-dict keys, so any float or SSQL
    checkpoint of the same architecture loads into it. Its quantizers start
    in ``quantize`` mode: activation ranges must be measured before the
    first quantized forward (``ssql_mm.quantization.calibrate`` or the
    ``QuantCalibrationHook``). With ``w_bits = a_bits = 0/None`` every
    quantizer is off and the backbone is exactly the float one.
    """

    def _quantize(self, w_bits: Optional[int], a_bits: Optional[int],
                  overrides: Optional[List[dict]]) -> None:
        self.quant_report = quantize_model(self, w_bits, a_bits)
        if overrides is None:
            # The paper's pinned layers only make sense around a quantized
            # network: at 0/0 the backbone must be the float one.
            is_float = check_bits(w_bits) is None and check_bits(a_bits) is None
            overrides = [] if is_float else paper_backbone_overrides(self)
        apply_overrides(self, overrides, self.quant_report)
        set_quant_mode(self, QuantMode.QUANTIZE)

    def init_weights(self) -> None:
        """Initialise; a ``Pretrained`` init_cfg that does not fit raises
        (see ``pretrained_check.strict_pretrained``)."""
        with strict_pretrained(self):
            super().init_weights()

    @property
    def layer_bits(self) -> dict:
        """Per quantized conv, its ``(w_bits, a_bits)``."""
        return get_bits(self)


def _quant_variant(base: type, doc: str) -> type:
    """Define the quantized twin of an mmpretrain ResNet class."""

    def __init__(self, *args, w_bits: Optional[int] = None,
                 a_bits: Optional[int] = None,
                 overrides: Optional[List[dict]] = None, **kwargs) -> None:
        base.__init__(self, *args, **kwargs)
        self._quantize(w_bits, a_bits, overrides)

    name = f'Quant{base.__name__}'
    cls = type(name, (QuantBackboneMixin, base), {
        '__init__': __init__,
        '__doc__': doc,
        '__module__': __name__,
        '__qualname__': name,
    })
    return MODELS.register_module(module=cls)


_ARGS_DOC = """

    Args:
        w_bits (int, optional): Weight bit-width of the convs that follow
            the model-wide setting; 0/None for float. Defaults to None.
        a_bits (int, optional): Input bit-width of those convs; 0/None for
            float. Defaults to None.
        overrides (list[dict], optional): Per-layer overrides, see
            ``ssql_mm.quantization.apply_overrides``. Defaults to None, the
            paper's assignment (stem weights 8-bit, image input float) when
            any bit-width is set, and no override when both are 0/None.
        **kwargs: Arguments of the float backbone (depth, out_indices,
            frozen_stages, norm_eval, strides, dilations, ...).
    """

QuantResNet = _quant_variant(
    ResNet, 'mmpretrain ``ResNet`` with quantized convs.' + _ARGS_DOC)
QuantResNet_CIFAR = _quant_variant(
    ResNet_CIFAR,
    'mmpretrain ``ResNet_CIFAR`` (3x3 stem, no max-pool) with quantized '
    'convs.' + _ARGS_DOC)
QuantResNetV1c = _quant_variant(
    ResNetV1c, 'mmpretrain ``ResNetV1c`` (deep stem) with quantized convs.' +
    _ARGS_DOC)
QuantResNetV1d = _quant_variant(
    ResNetV1d,
    'mmpretrain ``ResNetV1d`` (deep stem, avg-pool downsample) with '
    'quantized convs.' + _ARGS_DOC)
