from .quant_resnet import (QUANT_TWINS, QuantBackboneMixin, QuantResNet,
                           QuantResNet_CIFAR, QuantResNetV1c, QuantResNetV1d,
                           quant_twin)

__all__ = [
    'QuantBackboneMixin', 'QuantResNet', 'QuantResNet_CIFAR', 'QuantResNetV1c',
    'QuantResNetV1d', 'QUANT_TWINS', 'quant_twin'
]
