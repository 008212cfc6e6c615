from .cifar10_folders import (CIFAR10_CLASSES, extract_cifar10,
                              make_cifar10_subset)

__all__ = ['CIFAR10_CLASSES', 'extract_cifar10', 'make_cifar10_subset']
