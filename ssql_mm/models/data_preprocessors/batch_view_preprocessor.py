"""Two augmented views made from a batch of uint8 images, inside the model."""
from typing import List, Optional, Sequence, Tuple

import torch
from mmpretrain.models.utils.data_preprocessor import SelfSupDataPreprocessor
from mmpretrain.registry import MODELS

from ssql_mm.datasets.batch_augment import (color_jitter, hflip_mask,
                                            random_grayscale,
                                            random_resized_crop)

__all__ = ['BatchViewPreprocessor']


@MODELS.register_module()
class BatchViewPreprocessor(SelfSupDataPreprocessor):
    """SimSiam-style views made on the whole batch instead of per image.

    In training, a batch of uint8 RGB images ``(B, 3, H, W)`` (what
    ``PackInputs`` gives for :class:`CIFAR10InMemory`) becomes ``num_views``
    normalised views, each with RandomResizedCrop, colour jitter (applied
    with ``jitter['prob']``), random grayscale and horizontal flip, drawn
    per image (see :mod:`ssql_mm.datasets.batch_augment`). Outside training,
    or when the pipeline already made a list of views, it behaves as
    ``SelfSupDataPreprocessor`` (normalisation only).

    Args:
        mean (Sequence[float]): Per-channel mean, 0-255 scale.
        std (Sequence[float]): Per-channel std, 0-255 scale.
        num_views (int): Views per image. Defaults to 2.
        crop_size (int): Output side. Defaults to 32.
        crop_scale (tuple[float, float]): Crop area fraction range.
            Defaults to (0.2, 1.0).
        crop_ratio (tuple[float, float]): Crop aspect-ratio range.
            Defaults to (3/4, 4/3).
        jitter (dict, optional): ``brightness``, ``contrast``,
            ``saturation``, ``hue`` and ``prob``. Defaults to the SimSiam
            CIFAR values (0.4, 0.4, 0.4, 0.1, p 0.8); None disables it.
        gray_prob (float): Probability of grayscale. Defaults to 0.2.
        flip_prob (float): Probability of a horizontal flip. Defaults to 0.5.
        seed (int, optional): Seed of an own random generator, so views are
            reproducible whatever else draws random numbers. Defaults to
            None (torch's global generator, seeded by ``randomness.seed``).
        channels_last (bool): Return views in channels-last memory format
            (faster convolutions on CPU). Defaults to False.
    """

    def __init__(self,
                 mean: Sequence[float],
                 std: Sequence[float],
                 num_views: int = 2,
                 crop_size: int = 32,
                 crop_scale: Tuple[float, float] = (0.2, 1.0),
                 crop_ratio: Tuple[float, float] = (3 / 4, 4 / 3),
                 jitter: Optional[dict] = dict(
                     brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1,
                     prob=0.8),
                 gray_prob: float = 0.2,
                 flip_prob: float = 0.5,
                 seed: Optional[int] = None,
                 channels_last: bool = False) -> None:
        super().__init__(mean=mean, std=std)
        if num_views < 1:
            raise ValueError(f'num_views must be >= 1, got {num_views}.')
        self.num_views = num_views
        self.crop_size = crop_size
        self.crop_scale = tuple(crop_scale)
        self.crop_ratio = tuple(crop_ratio)
        self.jitter = dict(jitter) if jitter is not None else None
        self.gray_prob = gray_prob
        self.flip_prob = flip_prob
        self.channels_last = channels_last
        self.generator = (torch.Generator().manual_seed(seed)
                          if seed is not None else None)

    def make_views(self, images: torch.Tensor) -> List[torch.Tensor]:
        """Normalised augmented views of uint8 RGB ``(B, 3, H, W)`` images."""
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise TypeError('BatchViewPreprocessor expects a uint8 (B, 3, H, '
                            f'W) batch, got {images.dtype} {tuple(images.shape)}'
                            "; use a pipeline of only dict(type='PackInputs').")
        x = images.float().div_(255)
        gen = self.generator
        views = []
        for _ in range(self.num_views):
            flip = hflip_mask(len(x), self.flip_prob, gen)
            v = random_resized_crop(x, self.crop_size, self.crop_scale,
                                    self.crop_ratio, flip, gen)
            if self.jitter is not None:
                v = color_jitter(v, generator=gen, **self.jitter)
            v = random_grayscale(v, self.gray_prob, gen)
            v = (v * 255 - self.mean) / self.std
            if self.channels_last:
                v = v.contiguous(memory_format=torch.channels_last)
            views.append(v)
        return views

    def forward(self, data: dict, training: bool = False) -> dict:
        """Views in training; normalisation only otherwise."""
        inputs = data['inputs']
        if not training or isinstance(inputs, (list, tuple)):
            return super().forward(data, training)
        data = self.cast_data(data)
        return {'inputs': self.make_views(data['inputs']),
                'data_samples': data.get('data_samples')}
