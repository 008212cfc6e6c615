"""Fixtures of the engine tests: a tiny quantized classifier and loaders of
uint8 image batches as ``QuantCalibrationHook`` reads them."""
from typing import Callable

import pytest
import torch
from mmpretrain.models import ImageClassifier
from torch.utils.data import DataLoader


@pytest.fixture
def make_classifier() -> Callable[..., ImageClassifier]:
    """Factory of an ``ImageClassifier`` of 3 classes on a CIFAR ResNet-18
    (``QuantResNet_CIFAR``, 4 base channels); ``make(w_bits=4, a_bits=4,
    seed=0)``, 0 bits for a float model, ``seed`` the initial weights."""

    def make(w_bits: int = 4, a_bits: int = 4,
             seed: int = 0) -> ImageClassifier:
        torch.manual_seed(seed)
        return ImageClassifier(
            backbone=dict(type='QuantResNet_CIFAR', depth=18, stem_channels=4,
                          base_channels=4, w_bits=w_bits, a_bits=a_bits),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=3, in_channels=32))

    return make


@pytest.fixture
def make_loader() -> Callable[..., DataLoader]:
    """Factory of a loader of ``batches`` data batches, each
    ``dict(inputs=[uint8 (3, 16, 16) images], data_samples=None)``;
    ``make(seed=0, batches=2, images=4, scale=1.0)``, ``images`` per batch,
    drawn uniformly from [0, 255 * scale]."""

    def make(seed: int = 0, batches: int = 2, images: int = 4,
             scale: float = 1.0) -> DataLoader:
        gen = torch.Generator().manual_seed(seed)
        data = [dict(inputs=list(
            (torch.rand(images, 3, 16, 16, generator=gen) * 255 * scale
             ).to(torch.uint8)), data_samples=None) for _ in range(batches)]
        return DataLoader(data, batch_size=None, collate_fn=lambda b: b)

    return make
