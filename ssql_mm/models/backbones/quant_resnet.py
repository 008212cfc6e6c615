"""ResNet backbones whose convs run fake-quantized at fixed bit-widths."""
from typing import Dict, List, Optional, Type, Union

from mmpretrain.models.backbones import (ResNet, ResNet_CIFAR, ResNetV1c,
                                         ResNetV1d)
from mmpretrain.registry import MODELS

from ssql_mm.quantization import (QuantMode, apply_overrides, get_bits,
                                  quantize_model, set_quant_mode)

from ..bit_setting import MixedSpec, resolve_bit_setting
from .placement import check_placement, place_quantizers, placement_overrides
from .pretrained_check import strict_pretrained

__all__ = [
    'QuantBackboneMixin', 'QuantResNet', 'QuantResNet_CIFAR',
    'QuantResNetV1c', 'QuantResNetV1d', 'QUANT_TWINS', 'quant_twin'
]


class QuantBackboneMixin:
    """Converts a freshly built float backbone into a quantized one.

    The backbone keeps the float state-dict keys, so any float or SSQL
    checkpoint of the same architecture loads into it. Its quantizers start
    in ``quantize`` mode: activation ranges must be measured before the
    first quantized forward (``ssql_mm.quantization.calibrate`` or the
    ``QuantCalibrationHook``). With ``w_bits = a_bits = 0/None`` (and no
    per-layer bits) every quantizer is off and the backbone is exactly the
    float one.
    """

    def _quantize(self, w_bits: Optional[int], a_bits: Optional[int],
                  overrides: Optional[List[dict]], placement: Optional[str],
                  mixed: MixedSpec) -> None:
        setting = resolve_bit_setting(w_bits, a_bits, mixed)
        self.placement = check_placement(placement)
        setting.check_placement(self.placement)
        place_quantizers(self, self.placement)
        self.quant_report = quantize_model(self, setting.w_bits,
                                           setting.a_bits)
        if overrides is None:
            # The paper's pinned layers only make sense around a quantized
            # network: at 0/0 the backbone must be the float one.
            overrides = [] if setting.is_float else placement_overrides(
                self, self.placement)
        apply_overrides(self, overrides, self.quant_report)
        setting.apply(self)
        self.bit_setting = setting
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


@MODELS.register_module()
class QuantResNet(QuantBackboneMixin, ResNet):
    """mmpretrain ``ResNet`` with quantized convs.

    Args:
        *args: Positional arguments of ``ResNet`` (``depth`` first).
        w_bits (int, optional): Weight bit-width of the convs that follow
            the model-wide setting; 0/None for float. Defaults to None.
        a_bits (int, optional): Input bit-width of those convs; 0/None for
            float. Defaults to None.
        overrides (list[dict], optional): Per-layer overrides, see
            ``ssql_mm.quantization.apply_overrides``. Defaults to None, the
            paper's assignment (stem weights 8-bit, image input float) when
            any bit-width is set, and no override when both are 0/None.
        placement (str, optional): Where the activation quantizers sit
            around residual additions: ``'inputs'``, ``'paper'`` or
            ``'integer'`` (see ``models/backbones/placement.py``).
            Defaults to None ('inputs').
        mixed (str | dict, optional): Per-layer bits on top of the pinned
            layers: a bits file (``tools/mixed_precision.py`` writes one)
            or its content as a dict (see ``ssql_mm.models.bit_setting``).
            Its ``base`` stands for ``w_bits`` / ``a_bits`` when those are
            unset. Defaults to None (uniform bits).
        **kwargs: Keyword arguments of ``ResNet`` (out_indices,
            frozen_stages, norm_eval, strides, dilations, ...).
    """

    def __init__(self,
                 *args,
                 w_bits: Optional[int] = None,
                 a_bits: Optional[int] = None,
                 overrides: Optional[List[dict]] = None,
                 placement: Optional[str] = None,
                 mixed: MixedSpec = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._quantize(w_bits, a_bits, overrides, placement, mixed)


@MODELS.register_module()
class QuantResNet_CIFAR(QuantBackboneMixin, ResNet_CIFAR):
    """mmpretrain ``ResNet_CIFAR`` (3x3 stem, no max-pool) with quantized
    convs.

    Args:
        *args: Positional arguments of ``ResNet_CIFAR``.
        w_bits (int, optional): See :class:`QuantResNet`. Defaults to None.
        a_bits (int, optional): See :class:`QuantResNet`. Defaults to None.
        overrides (list[dict], optional): See :class:`QuantResNet`.
            Defaults to None.
        placement (str, optional): See :class:`QuantResNet`. Defaults to
            None.
        mixed (str | dict, optional): See :class:`QuantResNet`. Defaults to
            None.
        **kwargs: Keyword arguments of ``ResNet_CIFAR``.
    """

    def __init__(self,
                 *args,
                 w_bits: Optional[int] = None,
                 a_bits: Optional[int] = None,
                 overrides: Optional[List[dict]] = None,
                 placement: Optional[str] = None,
                 mixed: MixedSpec = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._quantize(w_bits, a_bits, overrides, placement, mixed)


@MODELS.register_module()
class QuantResNetV1c(QuantBackboneMixin, ResNetV1c):
    """mmpretrain ``ResNetV1c`` (deep stem) with quantized convs.

    Args:
        *args: Positional arguments of ``ResNetV1c``.
        w_bits (int, optional): See :class:`QuantResNet`. Defaults to None.
        a_bits (int, optional): See :class:`QuantResNet`. Defaults to None.
        overrides (list[dict], optional): See :class:`QuantResNet`.
            Defaults to None.
        placement (str, optional): See :class:`QuantResNet`. Defaults to
            None.
        mixed (str | dict, optional): See :class:`QuantResNet`. Defaults to
            None.
        **kwargs: Keyword arguments of ``ResNetV1c``.
    """

    def __init__(self,
                 *args,
                 w_bits: Optional[int] = None,
                 a_bits: Optional[int] = None,
                 overrides: Optional[List[dict]] = None,
                 placement: Optional[str] = None,
                 mixed: MixedSpec = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._quantize(w_bits, a_bits, overrides, placement, mixed)


@MODELS.register_module()
class QuantResNetV1d(QuantBackboneMixin, ResNetV1d):
    """mmpretrain ``ResNetV1d`` (deep stem, avg-pool downsample) with
    quantized convs.

    Args:
        *args: Positional arguments of ``ResNetV1d``.
        w_bits (int, optional): See :class:`QuantResNet`. Defaults to None.
        a_bits (int, optional): See :class:`QuantResNet`. Defaults to None.
        overrides (list[dict], optional): See :class:`QuantResNet`.
            Defaults to None.
        placement (str, optional): See :class:`QuantResNet`. Defaults to
            None.
        mixed (str | dict, optional): See :class:`QuantResNet`. Defaults to
            None.
        **kwargs: Keyword arguments of ``ResNetV1d``.
    """

    def __init__(self,
                 *args,
                 w_bits: Optional[int] = None,
                 a_bits: Optional[int] = None,
                 overrides: Optional[List[dict]] = None,
                 placement: Optional[str] = None,
                 mixed: MixedSpec = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._quantize(w_bits, a_bits, overrides, placement, mixed)


QUANT_TWINS: Dict[Type[ResNet], Type[QuantBackboneMixin]] = {
    ResNet: QuantResNet,
    ResNet_CIFAR: QuantResNet_CIFAR,
    ResNetV1c: QuantResNetV1c,
    ResNetV1d: QuantResNetV1d,
}
"""Float mmpretrain backbone class to its quantized twin."""


def quant_twin(backbone_type: Union[str, type]) -> Type[QuantBackboneMixin]:
    """The quantized twin of a float ResNet backbone (or the class itself
    when it already is a quantized one).

    Args:
        backbone_type (str | type): A class or its mmpretrain registry name,
            optionally scoped (``'mmpretrain.ResNetV1c'``).

    Returns:
        type: One of :data:`QUANT_TWINS`' values.

    Raises:
        ValueError: The backbone is not one of the supported ResNets.
    """
    cls = backbone_type
    if isinstance(backbone_type, str):
        scope, _, name = backbone_type.rpartition('.')
        cls = MODELS.get(name) if scope in ('', 'mmpretrain') else None
    if cls in QUANT_TWINS.values():
        return cls
    if not isinstance(cls, type) or cls not in QUANT_TWINS:
        supported = ', '.join(c.__name__ for c in QUANT_TWINS)
        raise ValueError(f'Backbone {backbone_type!r} has no quantized twin; '
                         f'use one of the mmpretrain ResNets: {supported}.')
    return QUANT_TWINS[cls]
