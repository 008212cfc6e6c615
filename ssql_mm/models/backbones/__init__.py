from .placement import (DEFAULT_PLACEMENT, LEGACY_PLACEMENT, PLACEMENTS,
                        QUANT_BLOCKS, QuantBasicBlock, QuantBlockMixin, QuantBottleneck,
                        check_placement, neck_placement_overrides,
                        place_quantizers, placement_overrides)
from .quant_resnet import (QUANT_TWINS, QuantBackboneMixin, QuantResNet,
                           QuantResNet_CIFAR, QuantResNetV1c, QuantResNetV1d,
                           quant_twin)

__all__ = [
    'QuantBackboneMixin', 'QuantResNet', 'QuantResNet_CIFAR', 'QuantResNetV1c',
    'QuantResNetV1d', 'QUANT_TWINS', 'quant_twin', 'PLACEMENTS',
    'DEFAULT_PLACEMENT', 'LEGACY_PLACEMENT', 'check_placement',
    'QuantBlockMixin', 'QuantBasicBlock', 'QuantBottleneck', 'QUANT_BLOCKS', 'place_quantizers',
    'placement_overrides', 'neck_placement_overrides'
]
