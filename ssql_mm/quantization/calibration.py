"""Calibration: measure activation ranges in float, then freeze them (and,
optionally, reconstruct the quantized model with a PTQ method)."""
import copy
from itertools import islice
from typing import Any, Callable, Iterable, Optional

import torch
from torch import nn

from .convert import fake_quantizers, freeze_ranges, observing, reset_ranges
from .fake_quantize import ActivationFakeQuantize, WeightFakeQuantize
from .observer_registry import ObserverSpec, build_observer
from .ptq.registry import PTQSpec, build_ptq

__all__ = ['calibrate', 'set_observers']


def set_observers(model: nn.Module, observer: ObserverSpec = 'minmax') -> None:
    """Choose how the ranges of ``model`` are found.

    Every activation quantizer that is not frozen gets a fresh observer
    (frozen ones keep their calibrated range). Every weight quantizer takes
    the observer's per-channel weight clipping when it has one (MSE, unless
    built with ``weights=False``), and ``max |w_c|`` otherwise.

    Args:
        model (nn.Module): A model holding quantized layers.
        observer (str | dict): See
            :func:`~.observer_registry.observer_config`. Defaults to
            'minmax'.
    """
    prototype = build_observer(observer)
    clip = (prototype.weight_clip
            if getattr(prototype, 'clips_weights', False) else None)
    for quantizer in fake_quantizers(model):
        if isinstance(quantizer, ActivationFakeQuantize):
            if not quantizer.frozen:
                quantizer.set_observer(copy.deepcopy(prototype))
        elif isinstance(quantizer, WeightFakeQuantize):
            quantizer.set_clip(clip)


@torch.no_grad()
def calibrate(model: nn.Module,
              batches: Iterable[Any],
              num_batches: Optional[int] = None,
              forward: Optional[Callable[[nn.Module, Any], Any]] = None,
              observer: ObserverSpec = 'minmax',
              ptq: Optional[PTQSpec] = None) -> int:
    """Record activation ranges over batches in float, then freeze; then,
    optionally, run a post-training quantization method from those ranges.

    The model runs in eval mode (BatchNorm statistics are not touched) and
    is put back in its previous train/eval state afterwards. Previously
    frozen activation ranges are replaced; frozen weight clipping values (a
    baked PTQ result) are kept. Ranges that depend on the bit-width (MSE,
    KL) are chosen for each quantizer's bits at the time of the call.

    Args:
        model (nn.Module): A model holding quantized layers.
        batches (Iterable): Inputs; each is passed to ``forward``.
        num_batches (int, optional): Stop after this many batches. Defaults
            to None (all).
        forward (Callable, optional): ``forward(model, batch)``. Defaults to
            ``model(batch)``.
        observer (str | dict): How ranges are found (see
            :func:`set_observers`). Defaults to 'minmax', the paper's.
        ptq (str | dict, optional): A reconstruction method run after the
            ranges are frozen, on the same batches: ``'adaround'``,
            ``'brecq'``, ``'qdrop'``, with arguments as
            ``'brecq:iters=500'`` or ``dict(type='brecq', iters=500)`` (see
            ``ssql_mm.quantization.ptq``). It writes its learned rounding
            into the weights and its step sizes into the frozen ranges.
            Defaults to None.

    Returns:
        int: Number of batches seen.
    """
    if num_batches is not None and num_batches < 1:
        raise ValueError(f'num_batches must be >= 1, got {num_batches}.')
    method = None if ptq is None else build_ptq(ptq)
    if method is not None:
        # Reconstruction passes over the batches many times: keep them.
        batches = list(islice(batches, num_batches))
    quantizers = [q for q in fake_quantizers(model)
                  if isinstance(q, ActivationFakeQuantize)]
    if not quantizers:
        raise ValueError('calibrate() found no quantized layer in the model; '
                         'convert it first (quantize_model or QuantResNet).')
    forward = forward or (lambda m, batch: m(batch))
    freeze_ranges(model, False)
    set_observers(model, observer)
    reset_ranges(model)
    was_training = model.training
    model.eval()
    seen = 0
    try:
        with observing(model):
            for batch in batches:
                if num_batches is not None and seen >= num_batches:
                    break
                forward(model, batch)
                seen += 1
    finally:
        model.train(was_training)
    if seen == 0:
        raise ValueError('calibrate() received no batch: the data is empty.')
    freeze_ranges(model)
    if method is not None:
        method(model, batches, forward)
    return seen
