"""What every SSQL variant shares: a quantized online encoder and its two
passes, float then fake-quantized, with one set of weights."""
from typing import Iterator, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ssql_mm.models.backbones import (check_placement,
                                     neck_placement_overrides,
                                     place_quantizers, placement_overrides)
from ssql_mm.quantization import (apply_overrides, fake_quantizers,
                                  observing, quantize_model, quantizing,
                                  reset_ranges)

__all__ = ['build_quant_encoder', 'FloatEncoder', 'SSQLMixin']

_QUANT_CFG_KEYS = ('w_bits', 'a_bits', 'placement', 'backbone_overrides',
                   'neck_overrides')


def build_quant_encoder(backbone: nn.Module, neck: nn.Module,
                        quant_cfg: Optional[dict]) -> None:
    """Quantize an encoder (backbone + projector) in place.

    Args:
        backbone (nn.Module): The backbone (a ResNet for the paper presets).
        neck (nn.Module): The projector.
        quant_cfg (dict, optional): ``w_bits`` / ``a_bits`` (initial
            bit-widths, later set per iteration by ``QuantHook``; default 4),
            ``placement`` (where activation quantizers sit around residual
            additions: 'inputs', 'paper' or 'integer'; default 'inputs'),
            ``backbone_overrides`` / ``neck_overrides`` (lists of per-layer
            overrides; default None, the paper's assignment).
    """
    quant_cfg = dict(quant_cfg or {})
    unknown = set(quant_cfg) - set(_QUANT_CFG_KEYS)
    if unknown:
        raise KeyError(f'Unknown key(s) {sorted(unknown)} in quant_cfg; '
                       f'allowed keys are {list(_QUANT_CFG_KEYS)}.')
    w_bits, a_bits = quant_cfg.get('w_bits', 4), quant_cfg.get('a_bits', 4)
    placement = check_placement(quant_cfg.get('placement'))
    place_quantizers(backbone, placement)
    for module, key, preset in ((backbone, 'backbone_overrides',
                                 placement_overrides),
                                (neck, 'neck_overrides',
                                 neck_placement_overrides)):
        quantize_model(module, w_bits, a_bits)
        overrides = quant_cfg.get(key)
        apply_overrides(module, preset(module, placement)
                        if overrides is None else overrides)


class FloatEncoder(nn.Sequential):
    """``nn.Sequential(backbone, neck)`` as a float momentum encoder sees it.

    MMEngine's averaged models (``ExponentialMovingAverage``, ``CosineEMA``)
    take the parameters by name and sync the buffers *by position* with
    those of their float copy. The quantized online encoder has extra
    buffers (the activation ranges of its fake quantizers), which would shift
    that pairing and write ranges into BatchNorm statistics. Here
    ``buffers()`` leaves the quantizers' buffers out, so the pairing is the
    float encoder's; the parameters are the float (latent) weights.
    """

    def buffers(self, recurse: bool = True) -> Iterator[torch.Tensor]:
        """Buffers of the float layers (BatchNorm statistics), in order."""
        quantizer_state = {
            id(buf) for quantizer in fake_quantizers(self)
            for buf in quantizer.buffers()
        }
        for buf in super().buffers(recurse):
            if id(buf) not in quantizer_state:
                yield buf


class SSQLMixin:
    """The SSQL part of a self-supervised algorithm with ``backbone`` and
    ``neck`` (the online encoder).

    Mixed in before an mmpretrain algorithm (``SSQLBYOL(SSQLMixin, BYOL)``),
    it quantizes the online encoder in place and runs it twice on the same
    views: in float, recording the activation ranges (reset every step),
    then fake-quantized at the current bit-widths with the same weights.
    Gradients flow through both passes into the one set of weights. Momentum
    (target) encoders copied from the float encoder stay float; update them
    from :meth:`float_encoder`.
    """

    backbone: nn.Module
    neck: nn.Module

    def quantize_encoder(self, quant_cfg: Optional[dict]) -> None:
        """Quantize ``backbone`` and ``neck`` in place.

        Args:
            quant_cfg (dict, optional): See :func:`build_quant_encoder`.
        """
        build_quant_encoder(self.backbone, self.neck, quant_cfg)

    def encode(self, view: torch.Tensor) -> torch.Tensor:
        """Projection of one view by the online encoder, in its current mode."""
        return self.neck(self.backbone(view))[0]

    def encode_float_and_quantized(
            self, views: Sequence[torch.Tensor]
    ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Float projections of ``views`` (recording activation ranges over
        all of them), then their fake-quantized projections.

        Args:
            views (Sequence[Tensor]): The views to encode.

        Returns:
            tuple[list[Tensor], list[Tensor]]: Float and quantized
            projections, one per view.
        """
        encoder = (self.backbone, self.neck)
        reset_ranges(self.backbone)
        reset_ranges(self.neck)
        with observing(encoder):
            float_feats = [self.encode(view) for view in views]
        with quantizing(encoder):
            quant_feats = [self.encode(view) for view in views]
        return float_feats, quant_feats

    def float_encoder(self) -> FloatEncoder:
        """The online encoder to pass to a float momentum encoder's
        ``update_parameters``."""
        return FloatEncoder(self.backbone, self.neck)
