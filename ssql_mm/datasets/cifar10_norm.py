"""CIFAR-10 normalisation: per-channel mean and std of the training images.

RGB order, on the 0-255 scale of decoded images. Configs cannot import
Python, so they spell these numbers once, in
``configs/_base_/models/simsiam_resnet18_cifar.py``, and take them from
there; a test checks every CIFAR-10 config against this module.
"""
from typing import Tuple

__all__ = ['CIFAR10_MEAN', 'CIFAR10_STD']

CIFAR10_MEAN: Tuple[float, float, float] = (125.307, 122.961, 113.8575)
CIFAR10_STD: Tuple[float, float, float] = (51.5865, 50.847, 51.255)
