"""SSQL on SimSiam: one set of weights trained for float and any bit-width."""
from typing import Dict, List, Optional

import torch
from mmpretrain.models.selfsup import SimSiam
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ssql_mm.quantization import (apply_overrides, observing,
                                  paper_backbone_overrides,
                                  paper_neck_overrides, quantize_model,
                                  quantizing, reset_ranges)

__all__ = ['SSQLSimSiam', 'build_quant_encoder']

_QUANT_CFG_KEYS = ('w_bits', 'a_bits', 'backbone_overrides', 'neck_overrides')


def build_quant_encoder(backbone: torch.nn.Module, neck: torch.nn.Module,
                        quant_cfg: Optional[dict]) -> None:
    """Quantize an encoder (backbone + projector) in place.

    Args:
        backbone (nn.Module): The backbone (a ResNet for the paper presets).
        neck (nn.Module): The projector.
        quant_cfg (dict, optional): ``w_bits`` / ``a_bits`` (initial
            bit-widths, later set per iteration by ``QuantHook``; default 4),
            ``backbone_overrides`` / ``neck_overrides`` (lists of per-layer
            overrides; default None, the paper's assignment).
    """
    quant_cfg = dict(quant_cfg or {})
    unknown = set(quant_cfg) - set(_QUANT_CFG_KEYS)
    if unknown:
        raise KeyError(f'Unknown key(s) {sorted(unknown)} in quant_cfg; '
                       f'allowed keys are {list(_QUANT_CFG_KEYS)}.')
    w_bits, a_bits = quant_cfg.get('w_bits', 4), quant_cfg.get('a_bits', 4)
    for module, key, preset in ((backbone, 'backbone_overrides',
                                 paper_backbone_overrides),
                                (neck, 'neck_overrides', paper_neck_overrides)):
        quantize_model(module, w_bits, a_bits)
        overrides = quant_cfg.get(key)
        apply_overrides(module, preset(module) if overrides is None else overrides)


@MODELS.register_module()
class SSQLSimSiam(SimSiam):
    """SSQL-SimSiam: `Synergistic Self-supervised and Quantization Learning
    <https://arxiv.org/abs/2207.05432>`_ on top of SimSiam.

    The backbone and projector (neck) are quantized in place; the predictor
    stays float. Each step runs the encoder in float on both views (recording
    activation ranges), then again fake-quantized at the current bit-widths
    with the same weights, and contrasts quantized predictions with float
    targets:

    ``L = 0.5 * (L_fp + L_q)``, returned as ``loss_fp = 0.5 * L_fp`` and
    ``loss_q = 0.5 * L_q`` (MMEngine sums the two).

    The bit-widths are set per iteration by ``QuantHook``. The state dict has
    exactly the keys of mmpretrain's ``SimSiam``.

    Args:
        backbone (dict): Backbone config (mmpretrain ``ResNet`` family).
        neck (dict): Projector config.
        head (dict): ``LatentPredictHead`` config (predictor + loss).
        quant_cfg (dict, optional): See :func:`build_quant_encoder`.
            Defaults to None.
        **kwargs: Other arguments of ``SimSiam`` (``data_preprocessor``,
            ``init_cfg``, ...).
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 quant_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(backbone=backbone, neck=neck, head=head, **kwargs)
        build_quant_encoder(self.backbone, self.neck, quant_cfg)

    def _encode(self, view: torch.Tensor) -> torch.Tensor:
        return self.neck(self.backbone(view))[0]

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """Float pass, quantized pass and the SSQL loss.

        Args:
            inputs (list[Tensor]): The two augmented views.
            data_samples (list[DataSample]): Unused.

        Returns:
            dict[str, Tensor]: ``loss_fp`` and ``loss_q``.
        """
        view1, view2 = inputs[0], inputs[1]
        encoder = (self.backbone, self.neck)
        reset_ranges(self.backbone)
        reset_ranges(self.neck)
        with observing(encoder):
            z1, z2 = self._encode(view1), self._encode(view2)
        with quantizing(encoder):
            z1_q, z2_q = self._encode(view1), self._encode(view2)
        loss_fp = 0.5 * (self.head.loss(z1, z2) + self.head.loss(z2, z1))
        loss_q = 0.5 * (self.head.loss(z1_q, z2) + self.head.loss(z2_q, z1))
        return dict(loss_fp=0.5 * loss_fp, loss_q=0.5 * loss_q)
