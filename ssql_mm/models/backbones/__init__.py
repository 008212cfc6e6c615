from .quant_resnet import (QuantBackboneMixin, QuantResNet, QuantResNet_CIFAR,
                           QuantResNetV1c, QuantResNetV1d)

__all__ = [
    'QuantBackboneMixin', 'QuantResNet', 'QuantResNet_CIFAR', 'QuantResNetV1c',
    'QuantResNetV1d'
]
