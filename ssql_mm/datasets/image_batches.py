"""Normalised float batches of uint8 images, as a backbone consumes them."""
from typing import Iterator, Optional, Sequence

import torch

__all__ = ['normalized_batches']


def normalized_batches(images: torch.Tensor,
                       mean: Sequence[float],
                       std: Sequence[float],
                       batch_size: int,
                       device: torch.device,
                       order: Optional[torch.Tensor] = None
                       ) -> Iterator[torch.Tensor]:
    """Yield normalised float batches of uint8 ``(N, 3, H, W)`` images.

    Args:
        images (Tensor): uint8 images.
        mean (Sequence[float]): Per-channel mean, 0-255 scale.
        std (Sequence[float]): Per-channel std, 0-255 scale.
        batch_size (int): Images per batch.
        device (torch.device): Where the batches go.
        order (Tensor, optional): Index order. Defaults to None (as stored).

    Yields:
        Tensor: ``(B, 3, H, W)`` float32 batches in channels-last memory
        format (faster convolutions on CPU; same values).
    """
    mean_t = torch.tensor(mean, device=device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=device).view(1, -1, 1, 1)
    order = torch.arange(len(images)) if order is None else order
    for start in range(0, len(order), batch_size):
        batch = images[order[start:start + batch_size]].to(device)
        yield ((batch.float() - mean_t) / std_t).contiguous(
            memory_format=torch.channels_last)
