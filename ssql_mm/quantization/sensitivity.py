r"""How much each quantizer, alone at ``b`` bits, moves a model's features.

Both methods measure the same label-free quantity, the feature drift

.. math::
    D = \frac{1}{N} \sum_n \lVert f(x_n) - f_0(x_n) \rVert^2,

with :math:`f_0` the float model's features and :math:`f` those of the model
with one quantizer (a layer's weight, or an activation quantizer) at ``b``
bits and every other quantizer float:

- ``measured``: run the calibration images through that model and compute
  :math:`D` (one forward pass per quantizer and candidate bit-width; cheap
  because one checkpoint serves every setting).
- ``hessian`` (HAWQ-v2, https://arxiv.org/abs/1911.03852): :math:`D` as a
  function of a block :math:`\theta_k` (a weight, or an activation tensor)
  is zero with zero gradient at the float point, so to second order
  :math:`D \approx \tfrac12 \Delta_k^\top H_{kk} \Delta_k`. HAWQ-v2
  replaces :math:`H_{kk}` by its average eigenvalue
  :math:`\mathrm{tr}(H_{kk}) / n_k`, estimated with Hutchinson's method
  (:mod:`.hutchinson`), and :math:`\Delta_k` by the quantization
  perturbation :math:`Q_b(\theta_k) - \theta_k`:
  :math:`D_k(b) \approx \tfrac12\, \mathrm{tr}(H_{kk}) / n_k\,
  \lVert Q_b(\theta_k) - \theta_k \rVert^2`. One Hessian pass serves every
  candidate bit-width. Activations are the tensors each quantizer reads on
  the calibration images (a separate graph node per quantizer, so two
  quantizers reading one tensor get their own Hessian block).

Only quantizers that follow the setting (not pinned) are measured; ranges
must be calibrated (frozen) first. Quantizer names are those of a per-layer
bit setting (see :func:`.bit_cost.activation_quantizers`).
"""
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import (Callable, Dict, Iterator, List, Optional, Sequence,
                    Tuple)

import torch
from torch import Tensor, nn

from .bit_cost import activation_quantizers
from .convert import quant_layers, quant_mode
from .fake_quantize import ActivationFakeQuantize, QuantMode, _FakeQuantize
from .hutchinson import hutchinson_samples

__all__ = [
    'SENSITIVITY_METHODS', 'Sensitivity', 'search_space',
    'hessian_sensitivity', 'measured_sensitivity', 'feature_drift'
]

SENSITIVITY_METHODS = ('hessian', 'measured')
Forward = Callable[[nn.Module, Tensor], Tensor]


@dataclass
class Sensitivity:
    """Feature drift per quantizer and candidate bit-width.

    Args:
        method (str): ``'hessian'`` or ``'measured'``.
        weights (dict): Layer name -> bits -> drift of its weight.
        activations (dict): Activation quantizer name -> bits -> drift.
        traces (dict): ``'w:<name>'`` / ``'a:<name>'`` -> (mean, standard
            error) of the average Hessian trace per element (``hessian``
            only).
        seconds (float): Time taken.
    """
    method: str
    weights: Dict[str, Dict[int, float]] = field(default_factory=dict)
    activations: Dict[str, Dict[int, float]] = field(default_factory=dict)
    traces: Dict[str, Tuple[float, float]] = field(default_factory=dict)
    seconds: float = 0.


def _default_forward(model: nn.Module, x: Tensor) -> Tensor:
    out = model(x)
    out = out[-1] if isinstance(out, (tuple, list)) else out
    return out.flatten(1)


def search_space(model: nn.Module) -> Tuple[Dict[str, nn.Module],
                                            Dict[str, ActivationFakeQuantize]]:
    """The quantizers a search may set: those not pinned.

    Args:
        model (nn.Module): A quantized model.

    Returns:
        tuple[dict, dict]: Layers whose weight quantizer is not pinned, and
        activation quantizers (by bit-setting name) that are not pinned.
    """
    layers = {name: layer for name, layer in quant_layers(model)
              if not layer.weight_quant.fixed}
    acts = {name: q for name, q in activation_quantizers(model).items()
            if not q.fixed}
    return layers, acts


def feature_drift(features: Tensor, reference: Tensor) -> Tensor:
    """Sum over images of the squared feature distance (divide by N for D).

    Args:
        features (Tensor): ``(B, ...)`` features.
        reference (Tensor): The float model's, same shape.

    Returns:
        Tensor: A scalar.
    """
    return (features.flatten(1) - reference.flatten(1)).pow(2).sum()


@contextmanager
def _at_bits(quantizer: _FakeQuantize, bits: int) -> Iterator[None]:
    """Quantize with one quantizer at ``bits`` (inside a float model)."""
    old_bits, old_mode = quantizer.bits, quantizer.mode
    quantizer.bits = bits
    quantizer.set_mode(QuantMode.QUANTIZE)
    try:
        yield
    finally:
        quantizer.bits = old_bits
        quantizer.set_mode(old_mode)


def _check_ranges(acts: Dict[str, ActivationFakeQuantize]) -> None:
    missing = [name for name, q in acts.items() if not q.has_range]
    if missing:
        raise ValueError(
            f'Activation quantizer(s) {missing[:3]} have no range; calibrate '
            'the model (ssql_mm.quantization.calibrate) before measuring '
            'sensitivities.')


@torch.no_grad()
def measured_sensitivity(model: nn.Module,
                         batches: Sequence[Tensor],
                         w_candidates: Sequence[int],
                         a_candidates: Sequence[int],
                         forward: Optional[Forward] = None) -> Sensitivity:
    """Feature drift with one quantizer at a time at each candidate.

    Args:
        model (nn.Module): A calibrated quantized model (eval mode is used).
        batches (Sequence[Tensor]): Calibration inputs.
        w_candidates (Sequence[int]): Weight bit-widths to measure.
        a_candidates (Sequence[int]): Activation bit-widths to measure.
        forward (Callable, optional): ``forward(model, batch)`` -> features.
            Defaults to the last output, flattened.

    Returns:
        Sensitivity: ``D`` per quantizer and bit-width.
    """
    start = time.perf_counter()
    forward = forward or _default_forward
    layers, acts = search_space(model)
    _check_ranges(acts)
    count = sum(len(b) for b in batches)
    result = Sensitivity('measured')
    was_training = model.training
    model.eval()
    try:
        with quant_mode(model, QuantMode.FLOAT):
            reference = [forward(model, batch) for batch in batches]

            def drift(quantizer: _FakeQuantize, bits: int) -> float:
                with _at_bits(quantizer, bits):
                    return sum(float(feature_drift(forward(model, b), ref))
                               for b, ref in zip(batches, reference)) / count

            for name, layer in layers.items():
                result.weights[name] = {
                    b: drift(layer.weight_quant, b) for b in w_candidates}
            for name, quantizer in acts.items():
                result.activations[name] = {
                    b: drift(quantizer, b) for b in a_candidates}
    finally:
        model.train(was_training)
    result.seconds = time.perf_counter() - start
    return result


def _perturbation(quantizer: _FakeQuantize, tensor: Tensor,
                  bits: int) -> float:
    with torch.no_grad(), _at_bits(quantizer, bits):
        return float((quantizer(tensor) - tensor).double().pow(2).sum())


class _ActivationTaps:
    """Forward hooks giving each activation quantizer's input its own graph
    node (a view), recorded for the Hessian."""

    def __init__(self, acts: Dict[str, ActivationFakeQuantize]) -> None:
        self.tensors: Dict[str, Tensor] = {}
        self._handles = [q.register_forward_hook(self._hook(name))
                         for name, q in acts.items()]

    def _hook(self, name: str):
        def hook(module, inputs, out):
            tap = out.view_as(out)
            self.tensors[name] = tap
            return tap
        return hook

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def hessian_sensitivity(model: nn.Module,
                        batches: Sequence[Tensor],
                        w_candidates: Sequence[int],
                        a_candidates: Sequence[int],
                        forward: Optional[Forward] = None,
                        num_samples: int = 16,
                        seed: int = 0) -> Sensitivity:
    """HAWQ-v2 sensitivities: Hutchinson traces times perturbations.

    Args:
        model (nn.Module): A calibrated quantized model (eval mode is used).
        batches (Sequence[Tensor]): Calibration inputs.
        w_candidates (Sequence[int]): Weight bit-widths.
        a_candidates (Sequence[int]): Activation bit-widths.
        forward (Callable, optional): ``forward(model, batch)`` -> features.
            Defaults to the last output, flattened.
        num_samples (int): Rademacher vectors per quantizer and batch.
            Defaults to 16.
        seed (int): Seed of the vectors. Defaults to 0.

    Returns:
        Sensitivity: Estimated ``D`` per quantizer and bit-width, and the
        traces.
    """
    start = time.perf_counter()
    forward = forward or _default_forward
    layers, acts = search_space(model)
    _check_ranges(acts)
    count = sum(len(b) for b in batches)
    generator = torch.Generator().manual_seed(seed)
    weights = [layer.weight for layer in layers.values()]
    w_trace: List[Tensor] = []
    a_trace: Dict[str, List[Tensor]] = {name: [] for name in acts}
    a_delta: Dict[str, Dict[int, float]] = {
        name: dict.fromkeys(a_candidates, 0.) for name in acts}
    was_training = model.training
    grad_flags = [w.requires_grad for w in weights]
    model.eval()
    try:
        for w in weights:
            w.requires_grad_(True)
        with quant_mode(model, QuantMode.FLOAT):
            for batch in batches:
                with torch.no_grad():
                    reference = forward(model, batch)
                taps = _ActivationTaps(acts)
                try:
                    loss = feature_drift(forward(model, batch),
                                         reference) / count
                finally:
                    taps.remove()
                missing = [n for n in acts if n not in taps.tensors]
                if missing:
                    raise ValueError(f'Activation quantizer(s) {missing[:3]} '
                                     'did not run in a forward pass.')
                samples = hutchinson_samples(
                    loss, weights + [taps.tensors[n] for n in acts],
                    num_samples, generator)
                w_trace.append(samples[:, :len(weights)])
                for k, name in enumerate(acts):
                    a_trace[name].append(samples[:, len(weights) + k] /
                                         taps.tensors[name].numel())
                    for bits in a_candidates:
                        a_delta[name][bits] += _perturbation(
                            acts[name], taps.tensors[name].detach(), bits)
                del loss, taps
    finally:
        model.train(was_training)
        for w, flag in zip(weights, grad_flags):
            w.requires_grad_(flag)
    result = Sensitivity('hessian')
    # The Hessian of the summed loss is the sum of the batches' Hessians.
    w_total = torch.stack(w_trace).sum(0) if w_trace else torch.zeros(1, 0)
    for k, (name, layer) in enumerate(layers.items()):
        per_element = w_total[:, k] / layer.weight.numel()
        result.traces[f'w:{name}'] = _mean_and_error(per_element)
        trace = float(per_element.mean())
        result.weights[name] = {
            b: 0.5 * trace * _perturbation(layer.weight_quant,
                                           layer.weight.detach(), b)
            for b in w_candidates}
    for name in acts:
        # Activations differ per batch: the trace per element, averaged
        # over batches and samples, times the perturbation summed over
        # batches.
        per_batch = torch.stack(a_trace[name])  # (batches, samples)
        trace = float(per_batch.mean())
        result.traces[f'a:{name}'] = _mean_and_error(per_batch.flatten())
        result.activations[name] = {
            b: 0.5 * trace * a_delta[name][b] for b in a_candidates}
    result.seconds = time.perf_counter() - start
    return result


def _mean_and_error(samples: Tensor) -> Tuple[float, float]:
    n = samples.numel()
    std = float(samples.std()) if n > 1 else float('nan')
    return float(samples.mean()), std / max(n, 1)**0.5
