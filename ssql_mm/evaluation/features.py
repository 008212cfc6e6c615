"""Pooled features of a backbone (calibration and batching live below, in
``ssql_mm.models.pretrained`` and ``ssql_mm.datasets``; re-exported here)."""
from typing import Callable, Optional, Sequence

import torch
from torch import nn

from ssql_mm.datasets import normalized_batches
from ssql_mm.models.pretrained import calibrate_backbone, pooled_features

__all__ = ['normalized_batches', 'calibrate_backbone', 'extract_features']


@torch.no_grad()
def extract_features(model: nn.Module,
                     images: torch.Tensor,
                     mean: Sequence[float],
                     std: Sequence[float],
                     batch_size: int = 256,
                     on_batch: Optional[Callable[[], None]] = None
                     ) -> torch.Tensor:
    """Globally pooled last-stage features of every image, in eval mode.

    Args:
        model (nn.Module): The backbone.
        images (Tensor): uint8 images.
        mean (Sequence[float]): Per-channel mean, 0-255 scale.
        std (Sequence[float]): Per-channel std, 0-255 scale.
        batch_size (int): Images per batch. Defaults to 256.
        on_batch (Callable, optional): Called after every batch (progress).
            Defaults to None.

    Returns:
        Tensor: ``(N, D)`` features on the model's device.
    """
    model.eval()
    device = next(model.parameters()).device
    feats = []
    for batch in normalized_batches(images, mean, std, batch_size, device):
        feats.append(pooled_features(model, batch))
        if on_batch is not None:
            on_batch()
    return torch.cat(feats)
