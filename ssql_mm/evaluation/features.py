"""Calibrate a quantized backbone and extract its pooled features."""
from typing import Callable, Iterator, Optional, Sequence, Union

import torch
from torch import nn

from ssql_mm.quantization import calibrate

__all__ = ['normalized_batches', 'calibrate_backbone', 'extract_features']


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


def _pooled(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    out = out[-1] if isinstance(out, (tuple, list)) else out
    return out.mean(dim=(2, 3)) if out.dim() == 4 else out.flatten(1)


def calibrate_backbone(model: nn.Module,
                       images: torch.Tensor,
                       mean: Sequence[float],
                       std: Sequence[float],
                       batch_size: int = 256,
                       num_batches: int = 10,
                       seed: int = 0,
                       observer: Union[str, dict] = 'minmax') -> int:
    """Calibrate activation ranges on randomly drawn training images.

    Args:
        model (nn.Module): A quantized backbone.
        images (Tensor): uint8 training images.
        mean (Sequence[float]): Per-channel mean, 0-255 scale.
        std (Sequence[float]): Per-channel std, 0-255 scale.
        batch_size (int): Images per batch. Defaults to 256.
        num_batches (int): Batches to calibrate on. Defaults to 10.
        seed (int): Seed of the draw. Defaults to 0.
        observer (str | dict): How ranges are found (see
            ``ssql_mm.quantization.observer_config``). Defaults to 'minmax'.

    Returns:
        int: Batches seen.
    """
    device = next(model.parameters()).device
    order = torch.randperm(
        len(images), generator=torch.Generator().manual_seed(seed))
    batches = normalized_batches(images, mean, std, batch_size, device, order)
    return calibrate(model, batches, num_batches, observer=observer)


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
        feats.append(_pooled(model, batch))
        if on_batch is not None:
            on_batch()
    return torch.cat(feats)
