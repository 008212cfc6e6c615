"""SSQL on BYOL: quantized online encoder, float EMA target network."""
from typing import Dict, List, Optional

import torch
from mmpretrain.models.selfsup import BYOL
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from .ssql_base import SSQLMixin

__all__ = ['SSQLBYOL']


@MODELS.register_module()
class SSQLBYOL(SSQLMixin, BYOL):
    """SSQL-BYOL: `Synergistic Self-supervised and Quantization Learning
    <https://arxiv.org/abs/2207.05432>`_ on top of BYOL.

    The online backbone and projector are quantized in place; the predictor
    stays float. The target network is mmpretrain's ``CosineEMA`` of the
    online *float* weights, copied before quantization and never quantized.
    Float and quantized online predictions of each view regress onto the
    same target projection of the other view:

    ``L = 0.5 * (L_fp + L_q)`` with ``L_fp`` and ``L_q`` BYOL's loss
    (``2 * (l_1 + l_2)``), returned as ``loss_fp = 0.5 * L_fp`` and
    ``loss_q = 0.5 * L_q``. The state dict has exactly the keys of
    mmpretrain's ``BYOL``.

    Args:
        backbone (dict): Backbone config (mmpretrain ``ResNet`` family).
        neck (dict): Projector config.
        head (dict): ``LatentPredictHead`` config (predictor + loss).
        base_momentum (float): Start weight of the online weights in the
            target update (mmpretrain convention: 0.01 is m = 0.99).
            Defaults to 0.004.
        quant_cfg (dict, optional): See
            :func:`~ssql_mm.models.selfsup.ssql_base.build_quant_encoder`.
            Defaults to None.
        **kwargs: Other arguments of ``BYOL`` (``data_preprocessor``,
            ``init_cfg``, ...).
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 base_momentum: float = 0.004,
                 quant_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(backbone=backbone, neck=neck, head=head,
                         base_momentum=base_momentum, **kwargs)
        self.quantize_encoder(quant_cfg)

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """Float and quantized online passes, target pass and the loss.

        Args:
            inputs (list[Tensor]): The two augmented views.
            data_samples (list[DataSample]): Unused.

        Returns:
            dict[str, Tensor]: ``loss_fp`` and ``loss_q``.
        """
        view1, view2 = inputs[0], inputs[1]
        (z1, z2), (z1_q, z2_q) = self.encode_float_and_quantized([view1, view2])
        with torch.no_grad():
            self.target_net.update_parameters(self.float_encoder())
            target1 = self.target_net(view1)[0]
            target2 = self.target_net(view2)[0]
        loss_fp = 2. * (self.head.loss(z1, target2) + self.head.loss(z2, target1))
        loss_q = 2. * (self.head.loss(z1_q, target2) +
                       self.head.loss(z2_q, target1))
        return dict(loss_fp=0.5 * loss_fp, loss_q=0.5 * loss_q)
