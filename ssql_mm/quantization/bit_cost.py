r"""What a bit assignment costs: bit operations, model size, average bits.

For every quantized layer ``L`` (conv / linear), a float forward pass with
hooks measures, per image at the input size given,

- ``MACs_L``: multiply-accumulates (output elements times the inputs each
  one reads: ``C_in / groups * k_h * k_w`` for a conv, ``C_in`` for a
  linear);
- ``params_L``: weight elements;
- the *feeder*: the activation quantizer whose codes the layer reads. A
  tensor can pass several activation quantizers before a layer reads it
  (under the ``paper`` placement a block output goes through the block's
  ``output_quant``, the next block's ``input_quant`` and the conv's own
  ``input_quant``); the feeder is the last of them that quantizes: pinned
  to a bit-width, or not pinned (then it follows the setting).

With :math:`w_L, a_L` the weight and feeder bits (32 for a float side):

.. math::
    \mathrm{BOPs} = \sum_L \mathrm{MACs}_L\, w_L\, a_L, \qquad
    \mathrm{size} = \sum_L \mathrm{params}_L\, w_L / 8 \text{ bytes}, \qquad
    \text{avg-bits} = \frac{\sum_L \mathrm{params}_L\, w_L}
                           {\sum_L \mathrm{params}_L}.

Activation quantizers are named as per-layer bit settings name them: a
layer's input quantizer by the layer's name, any other by its module name
(``'layer1.0.output_quant'``).
"""
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor, nn

from .convert import free_activation_quantizers, quant_layers, quant_mode
from .fake_quantize import ActivationFakeQuantize, QuantMode

__all__ = [
    'FLOAT_COST_BITS', 'BUDGET_KINDS', 'LayerCost', 'activation_quantizers',
    'layer_costs', 'assignment_cost', 'model_bits', 'model_cost'
]

FLOAT_COST_BITS = 32
BUDGET_KINDS = ('bops', 'size', 'avg-bits')


@dataclass
class LayerCost:
    """What one quantized layer costs per image.

    Args:
        name (str): The layer's name.
        macs (int): Multiply-accumulates per image.
        params (int): Weight elements.
        feeder (str, optional): The activation quantizer whose codes the
            layer reads; None when no quantizer does (a float input).
    """
    name: str
    macs: int
    params: int
    feeder: Optional[str]


def activation_quantizers(
        model: nn.Module) -> Dict[str, ActivationFakeQuantize]:
    """Every activation quantizer of ``model`` by the name a bit setting
    gives it: a layer's input quantizer under the layer's name, the others
    under their own."""
    named = {name: layer.input_quant for name, layer in quant_layers(model)}
    named.update(free_activation_quantizers(model))
    return named


def _quantizes(quantizer: ActivationFakeQuantize) -> bool:
    """Whether the quantizer acts at a quantized setting: pinned to bits, or
    not pinned."""
    return not quantizer.fixed or quantizer.bits is not None


def _macs(layer: nn.Module, out: Tensor) -> int:
    per_output = layer.weight[0].numel()  # C_in / groups * k_h * k_w, or C_in
    return out[0].numel() * per_output


@torch.no_grad()
def layer_costs(model: nn.Module, example: Tensor) -> Dict[str, LayerCost]:
    """MACs, weight elements and feeder of every quantized layer.

    Args:
        model (nn.Module): A quantized model (the quantizers' pinned flags
            and bits decide the feeders).
        example (Tensor): One input batch at the size the model runs at;
            costs are per image.

    Returns:
        dict[str, LayerCost]: Per layer, in module order.
    """
    names = {id(q): name for name, q in activation_quantizers(model).items()}
    # Tensor id -> the quantizers outside layers it passed, in order. The
    # float pass returns every activation quantizer's input object
    # unchanged; the tensors are kept alive so that ids are not reused.
    passed: Dict[int, List[ActivationFakeQuantize]] = {}
    alive: List[Tensor] = []
    found: Dict[str, LayerCost] = {}
    layers = dict(quant_layers(model))

    def on_quantizer(module, inputs, out):
        alive.append(out)
        chain = passed.get(id(inputs[0]), []) if out is inputs[0] else []
        passed[id(out)] = chain + [module]

    def on_layer(name):
        def hook(module, inputs, out):
            alive.append(out)
            chain = passed.get(id(inputs[0]), []) + [module.input_quant]
            feeder = next((q for q in reversed(chain) if _quantizes(q)), None)
            found[name] = LayerCost(
                name, _macs(module, out), module.weight.numel(),
                None if feeder is None else names[id(feeder)])
        return hook

    # A layer's own input quantizer is appended by the layer's hook: it
    # quantizes that layer's input only, not the tensor other layers read.
    handles = [q.register_forward_hook(on_quantizer)
               for _, q in free_activation_quantizers(model)]
    handles += [layer.register_forward_hook(on_layer(name))
                for name, layer in layers.items()]
    was_training = model.training
    model.eval()
    try:
        with quant_mode(model, QuantMode.FLOAT):
            model(example[:1])
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    missing = [name for name in layers if name not in found]
    if missing:
        raise ValueError(f'Quantized layer(s) {missing[:4]} did not run in a '
                         'forward pass, so their cost is unknown; search '
                         'the bits of a model whose layers all run.')
    return {name: found[name] for name in layers}


def _cost_bits(bits: Optional[int]) -> int:
    return FLOAT_COST_BITS if bits is None else bits


def assignment_cost(costs: Mapping[str, LayerCost],
                    w_bits: Mapping[str, Optional[int]],
                    a_bits: Mapping[str, Optional[int]]) -> Dict[str, float]:
    """BOPs, size (bytes) and average weight bits of an assignment.

    Args:
        costs (Mapping[str, LayerCost]): From :func:`layer_costs`.
        w_bits (Mapping[str, int]): Weight bits per layer (None = float).
        a_bits (Mapping[str, int]): Bits per activation quantizer name
            (None = float); every feeder must be present.

    Returns:
        dict[str, float]: ``{'bops': ..., 'size': ..., 'avg-bits': ...}``.
    """
    bops = size_bits = params = 0
    for name, cost in costs.items():
        w = _cost_bits(w_bits[name])
        a = FLOAT_COST_BITS if cost.feeder is None else _cost_bits(
            a_bits[cost.feeder])
        bops += cost.macs * w * a
        size_bits += cost.params * w
        params += cost.params
    return {'bops': float(bops), 'size': size_bits / 8.,
            'avg-bits': size_bits / max(params, 1)}


def model_bits(model: nn.Module) -> Tuple[Dict[str, Optional[int]],
                                          Dict[str, Optional[int]]]:
    """The current weight bits per layer and bits per activation quantizer
    name of ``model``."""
    w_bits = {name: layer.weight_quant.bits
              for name, layer in quant_layers(model)}
    a_bits = {name: q.bits for name, q in activation_quantizers(model).items()}
    return w_bits, a_bits


def model_cost(model: nn.Module,
               costs: Mapping[str, LayerCost]) -> Dict[str, float]:
    """:func:`assignment_cost` of the bits ``model``'s quantizers hold now.

    Args:
        model (nn.Module): The quantized model ``costs`` was measured on.
        costs (Mapping[str, LayerCost]): From :func:`layer_costs`.

    Returns:
        dict[str, float]: See :func:`assignment_cost`.
    """
    return assignment_cost(costs, *model_bits(model))

