from .cifar10_folders import (CIFAR10_CLASSES, extract_cifar10,
                              make_cifar10_subset)
from .cifar10_memory import CIFAR10InMemory, load_cifar10_arrays
from .cifar10_norm import CIFAR10_MEAN, CIFAR10_STD
from .image_batches import normalized_batches

__all__ = [
    'CIFAR10_CLASSES', 'CIFAR10_MEAN', 'CIFAR10_STD', 'CIFAR10InMemory',
    'extract_cifar10', 'load_cifar10_arrays', 'make_cifar10_subset',
    'normalized_batches'
]
