"""Turn a float model into a quantized one and drive its quantizers.

Conversion swaps every ``nn.Conv2d`` / ``nn.Linear`` for its quantized twin in
place (parameters are shared, not copied). Per-layer overrides pin the
bit-width of chosen layers (for example the stem at 8 bits, or a layer in
float); every other quantizer follows the model-wide bit-width set with
:func:`set_bits`. Modes are switched for the whole model at once, through
:func:`set_quant_mode` or the :func:`observing` / :func:`quantizing` context
managers, which restore the previous modes on exit.
"""
import fnmatch
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

from torch import nn

from .fake_quantize import (ActivationFakeQuantize, QuantMode, _FakeQuantize,
                            check_bits)
from .layers import QConv2d, QLinear, QuantLayerMixin

__all__ = [
    'QUANT_TWINS', 'QuantReport', 'quantize_model', 'apply_overrides',
    'quant_layers', 'free_activation_quantizers', 'fake_quantizers',
    'set_bits', 'get_bits',
    'set_quant_mode', 'quant_mode', 'observing', 'quantizing',
    'reset_ranges', 'freeze_ranges'
]

QUANT_TWINS = {nn.Conv2d: QConv2d, nn.Linear: QLinear}
_OVERRIDE_KEYS = {'name', 'w_bits', 'a_bits'}


@dataclass
class QuantReport:
    """What :func:`quantize_model` did.

    Args:
        converted (list[str]): Names of the layers swapped for quantized twins.
        overridden (dict[str, dict]): Per layer name, the pinned bit-widths.
    """
    converted: List[str] = field(default_factory=list)
    overridden: Dict[str, dict] = field(default_factory=dict)


def quant_layers(model: nn.Module) -> Iterator[Tuple[str, QuantLayerMixin]]:
    """Yield ``(name, layer)`` for every quantized layer of ``model``."""
    for name, module in model.named_modules():
        if isinstance(module, QuantLayerMixin):
            yield name, module


def free_activation_quantizers(
        model: nn.Module) -> Iterator[Tuple[str, ActivationFakeQuantize]]:
    """Yield ``(name, quantizer)`` for every activation quantizer of
    ``model`` that does not belong to a quantized layer (for example the
    quantizers a residual block holds around its addition)."""
    owned = {
        id(q) for _, layer in quant_layers(model)
        for q in (layer.weight_quant, layer.input_quant)
    }
    for name, module in model.named_modules():
        if isinstance(module, ActivationFakeQuantize) and id(module) not in owned:
            yield name, module


def fake_quantizers(model: nn.Module) -> List[_FakeQuantize]:
    """All weight and activation fake quantizers of ``model``."""
    return [m for m in model.modules() if isinstance(m, _FakeQuantize)]


def _check_override(override: dict) -> dict:
    if not isinstance(override, dict) or 'name' not in override:
        raise TypeError('Each quantization override must be a dict with a '
                        f"'name' pattern, got {override!r}.")
    unknown = set(override) - _OVERRIDE_KEYS
    if unknown:
        raise KeyError(f'Unknown key(s) {sorted(unknown)} in quantization '
                       f'override {override!r}; allowed keys are '
                       f'{sorted(_OVERRIDE_KEYS)}.')
    for key in ('w_bits', 'a_bits'):
        if key in override:
            check_bits(override[key], f"{key} of override '{override['name']}'")
    return override


def apply_overrides(model: nn.Module, overrides: Sequence[dict],
                    report: Optional[QuantReport] = None) -> QuantReport:
    """Pin bit-widths of the quantizers whose names match a pattern.

    Each override is ``dict(name=PATTERN, w_bits=..., a_bits=...)``.
    ``PATTERN`` is an ``fnmatch`` pattern over module names relative to
    ``model``: quantized layers (``'conv1'``, ``'layer*.0.downsample.0'``,
    ``'*'``), whose ``w_bits`` / ``a_bits`` are their weight / input
    quantizers, and activation quantizers outside a layer
    (``'layer1.0.output_quant'``, see :func:`free_activation_quantizers`),
    which take ``a_bits`` only. A bit key that is present pins that
    quantizer (0/None pins it to float); an absent key leaves it following
    the model-wide bit-width. Later overrides win.

    Args:
        model (nn.Module): A model that already holds quantized layers.
        overrides (Sequence[dict]): The overrides.
        report (QuantReport, optional): Report to add to. Defaults to None.

    Returns:
        QuantReport: ``report`` (or a new one) with the pinned quantizers.
    """
    report = report or QuantReport()
    targets: Dict[str, Dict[str, _FakeQuantize]] = {
        name: dict(w_bits=layer.weight_quant, a_bits=layer.input_quant)
        for name, layer in quant_layers(model)
    }
    targets.update((name, dict(a_bits=quantizer))
                   for name, quantizer in free_activation_quantizers(model))
    for override in overrides:
        override = _check_override(override)
        matched = fnmatch.filter(targets, override['name'])
        if not matched:
            names = ', '.join(list(targets)[:12])
            raise ValueError(
                f"Quantization override pattern '{override['name']}' matches "
                f'no quantized layer. Layer names look like: {names} ... '
                'Fix the pattern or remove the override.')
        keys = [key for key in ('w_bits', 'a_bits') if key in override]
        if not any(key in targets[name] for name in matched for key in keys):
            raise ValueError(
                f"Quantization override {override!r} sets {keys} but "
                f"'{override['name']}' matches only activation quantizers "
                f'({matched[:4]}); give them a_bits.')
        for name in matched:
            pinned = report.overridden.setdefault(name, {})
            for key in keys:
                quantizer = targets[name].get(key)
                if quantizer is not None:
                    quantizer.bits = check_bits(override[key])
                    quantizer.fixed = True
                    pinned[key] = quantizer.bits
    return report


def quantize_model(model: nn.Module,
                   w_bits: Optional[int] = None,
                   a_bits: Optional[int] = None,
                   overrides: Sequence[dict] = ()) -> QuantReport:
    """Swap every Conv2d/Linear of ``model`` for its quantized twin, in place.

    Layers already quantized are kept. Activation quantizers outside a
    layer (see :func:`free_activation_quantizers`) that are not pinned take
    ``a_bits``. ``model`` itself must not be a bare
    Conv2d/Linear (there would be no parent to swap it in).

    Args:
        model (nn.Module): The model to convert.
        w_bits (int, optional): Initial weight bit-width of the layers that
            follow the model-wide setting. Defaults to None (float).
        a_bits (int, optional): Initial activation bit-width. Defaults to None.
        overrides (Sequence[dict]): Per-layer overrides, see
            :func:`apply_overrides`. Defaults to ().

    Returns:
        QuantReport: Converted and pinned layers.
    """
    if type(model) in QUANT_TWINS:
        raise TypeError('quantize_model converts the layers inside a module; '
                        f'use {QUANT_TWINS[type(model)].__name__}.from_float '
                        'for a single layer.')
    w_bits = check_bits(w_bits, 'w_bits')
    a_bits = check_bits(a_bits, 'a_bits')
    report = QuantReport()
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            twin = QUANT_TWINS.get(type(child))
            if twin is None:
                continue
            setattr(parent, child_name, twin.from_float(child, w_bits, a_bits))
            report.converted.append(
                f'{parent_name}.{child_name}' if parent_name else child_name)
    for _, quantizer in free_activation_quantizers(model):
        if not quantizer.fixed:
            quantizer.bits = a_bits
    return apply_overrides(model, overrides, report)


def set_bits(model: nn.Module, w_bits: Optional[int],
             a_bits: Optional[int]) -> None:
    """Set the bit-width of every quantizer that is not pinned by an override.

    Args:
        model (nn.Module): A quantized model.
        w_bits (int, optional): Weight bit-width; 0/None for float.
        a_bits (int, optional): Activation bit-width; 0/None for float.
    """
    w_bits = check_bits(w_bits, 'w_bits')
    a_bits = check_bits(a_bits, 'a_bits')
    for quantizer in fake_quantizers(model):
        if not quantizer.fixed:
            is_act = isinstance(quantizer, ActivationFakeQuantize)
            quantizer.bits = a_bits if is_act else w_bits


def get_bits(model: nn.Module) -> Dict[str, Tuple[Optional[int], Optional[int]]]:
    """Per quantized layer, its current ``(w_bits, a_bits)``."""
    return {
        name: (layer.weight_quant.bits, layer.input_quant.bits)
        for name, layer in quant_layers(model)
    }


def set_quant_mode(model: Union[nn.Module, Sequence[nn.Module]],
                   mode: str) -> None:
    """Put every fake quantizer of ``model`` in ``mode`` (see QuantMode).

    Args:
        model (nn.Module | Sequence[nn.Module]): Model(s) to switch.
        mode (str): ``'float'``, ``'observe'`` or ``'quantize'``.
    """
    models = [model] if isinstance(model, nn.Module) else model
    for m in models:
        for quantizer in fake_quantizers(m):
            quantizer.set_mode(mode)


@contextmanager
def quant_mode(model: Union[nn.Module, Sequence[nn.Module]],
               mode: str) -> Iterator[None]:
    """Context manager: switch to ``mode``, restore the previous modes on exit.

    Args:
        model (nn.Module | Sequence[nn.Module]): Model(s) to switch.
        mode (str): ``'float'``, ``'observe'`` or ``'quantize'``.
    """
    models = [model] if isinstance(model, nn.Module) else model
    quantizers = [q for m in models for q in fake_quantizers(m)]
    previous = [q.mode for q in quantizers]
    try:
        for q in quantizers:
            q.set_mode(mode)
        yield
    finally:
        for q, old in zip(quantizers, previous):
            q.set_mode(old)


def observing(model: Union[nn.Module, Sequence[nn.Module]]):
    """Float forward passes that record activation ranges (see quant_mode)."""
    return quant_mode(model, QuantMode.OBSERVE)


def quantizing(model: Union[nn.Module, Sequence[nn.Module]]):
    """Fake-quantized forward passes at the current bits (see quant_mode)."""
    return quant_mode(model, QuantMode.QUANTIZE)


def reset_ranges(model: nn.Module) -> None:
    """Forget the recorded activation ranges that are not frozen."""
    for quantizer in fake_quantizers(model):
        if isinstance(quantizer, ActivationFakeQuantize):
            quantizer.reset_range()


def freeze_ranges(model: nn.Module, frozen: bool = True) -> None:
    """Freeze (or unfreeze) every recorded activation range of ``model``."""
    for quantizer in fake_quantizers(model):
        if isinstance(quantizer, ActivationFakeQuantize) and (
                quantizer.has_range or not frozen):
            quantizer.freeze(frozen)
