"""SSQL on MoCo v2: float and quantized queries against one float key."""
from typing import Dict, List, Optional

import torch
from mmpretrain.models.selfsup import MoCo
from mmpretrain.models.utils import batch_shuffle_ddp, batch_unshuffle_ddp
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch.nn.functional import normalize

from .ssql_base import SSQLMixin

__all__ = ['SSQLMoCoV2']


@MODELS.register_module()
class SSQLMoCoV2(SSQLMixin, MoCo):
    """SSQL-MoCo v2: `Synergistic Self-supervised and Quantization Learning
    <https://arxiv.org/abs/2207.05432>`_ on top of MoCo v2 (mmpretrain's
    ``MoCo``).

    The query backbone and projector are quantized in place. The momentum
    (key) encoder is mmpretrain's ``ExponentialMovingAverage`` of the query
    encoder's *float* weights, copied before quantization and never
    quantized. The float query ``q_f`` and the quantized query ``q`` (both
    L2-normalised) are contrasted with the same key and the same queue:

    ``L = 0.5 * (InfoNCE(q) + InfoNCE(q_f))``, returned as
    ``loss_fp = 0.5 * InfoNCE(q_f)`` and ``loss_q = 0.5 * InfoNCE(q)``.
    The key is enqueued once per step; queue and pointer are mmpretrain's
    (keys gathered from all ranks). The state dict has exactly the keys of
    mmpretrain's ``MoCo``.

    Args:
        backbone (dict): Backbone config (mmpretrain ``ResNet`` family).
        neck (dict): Projector config (``MoCoV2Neck``).
        head (dict): ``ContrastiveHead`` config (loss + temperature).
        queue_len (int): Number of negative keys in the queue.
            Defaults to 65536.
        feat_dim (int): Dimension of the projections. Defaults to 128.
        momentum (float): Weight of the query weights in the key encoder
            update (mmpretrain convention: 0.001 is m = 0.999).
            Defaults to 0.001.
        quant_cfg (dict, optional): See
            :func:`~ssql_mm.models.selfsup.ssql_base.build_quant_encoder`.
            Defaults to None.
        **kwargs: Other arguments of ``MoCo`` (``data_preprocessor``,
            ``init_cfg``, ...).
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 queue_len: int = 65536,
                 feat_dim: int = 128,
                 momentum: float = 0.001,
                 quant_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(backbone=backbone, neck=neck, head=head,
                         queue_len=queue_len, feat_dim=feat_dim,
                         momentum=momentum, **kwargs)
        self.quantize_encoder(quant_cfg)

    def info_nce(self, query: torch.Tensor, key: torch.Tensor,
                 queue: torch.Tensor) -> torch.Tensor:
        """InfoNCE of normalised queries: positive ``key``, negatives
        ``queue`` (``C x K``)."""
        l_pos = torch.einsum('nc,nc->n', [query, key]).unsqueeze(-1)
        l_neg = torch.einsum('nc,ck->nk', [query, queue])
        return self.head.loss(l_pos, l_neg)

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """Float and quantized queries, the float key and the loss.

        Args:
            inputs (list[Tensor]): Query and key views.
            data_samples (list[DataSample]): Unused.

        Returns:
            dict[str, Tensor]: ``loss_fp`` and ``loss_q``.
        """
        im_q, im_k = inputs[0], inputs[1]
        (q_f, ), (q, ) = self.encode_float_and_quantized([im_q])
        q_f, q = normalize(q_f, dim=1), normalize(q, dim=1)
        with torch.no_grad():
            self.encoder_k.update_parameters(self.float_encoder())
            # shuffle for making use of BN
            im_k, idx_unshuffle = batch_shuffle_ddp(im_k)
            k = normalize(self.encoder_k(im_k)[0], dim=1)
            k = batch_unshuffle_ddp(k, idx_unshuffle)
        queue = self.queue.clone().detach()
        loss_fp = self.info_nce(q_f, k, queue)
        loss_q = self.info_nce(q, k, queue)
        self._dequeue_and_enqueue(k)
        return dict(loss_fp=0.5 * loss_fp, loss_q=0.5 * loss_q)
