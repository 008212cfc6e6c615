"""SSQL on SimSiam: one set of weights trained for float and any bit-width."""
from typing import Dict, List, Optional

import torch
from mmpretrain.models.selfsup import SimSiam
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from .ssql_base import SSQLMixin

__all__ = ['SSQLSimSiam']


@MODELS.register_module()
class SSQLSimSiam(SSQLMixin, SimSiam):
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
        quant_cfg (dict, optional): See
            :func:`~ssql_mm.models.selfsup.ssql_base.build_quant_encoder`.
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
        self.quantize_encoder(quant_cfg)

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """Float pass, quantized pass and the SSQL loss.

        Args:
            inputs (list[Tensor]): The two augmented views.
            data_samples (list[DataSample]): Unused.

        Returns:
            dict[str, Tensor]: ``loss_fp`` and ``loss_q``.
        """
        (z1, z2), (z1_q, z2_q) = self.encode_float_and_quantized(inputs[:2])
        loss_fp = 0.5 * (self.head.loss(z1, z2) + self.head.loss(z2, z1))
        loss_q = 0.5 * (self.head.loss(z1_q, z2) + self.head.loss(z2_q, z1))
        return dict(loss_fp=0.5 * loss_fp, loss_q=0.5 * loss_q)
