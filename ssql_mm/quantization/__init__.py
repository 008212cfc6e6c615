"""Fake quantization: observers, quantizers, quantized layers, conversion."""
from .calibration import calibrate, set_observers
from .clipping_observers import (HistogramObserver, KLObserver, MSEObserver,
                                 PercentileObserver, kl_threshold,
                                 mse_weight_clip)
from .convert import (QUANT_TWINS, QuantReport, apply_overrides,
                      fake_quantizers, free_activation_quantizers,
                      freeze_ranges, get_bits, observing,
                      quant_layers, quant_mode, quantize_model, quantizing,
                      reset_ranges, set_bits, set_quant_mode)
from .fake_quantize import (MAX_BITS, MIN_BITS, ActivationFakeQuantize,
                            QuantMode, WeightFakeQuantize, activation_qparams,
                            check_bits, fake_quantize_activation,
                            fake_quantize_weight, weight_qparams)
from .histogram import Histogram
from .layers import QConv2d, QLinear, QuantLayerMixin
from .observer_registry import OBSERVERS, build_observer, observer_config
from .observers import (EMAMinMaxObserver, MinMaxObserver, Observer, minmax,
                        minmax_per_channel)
from .presets import paper_backbone_overrides, paper_neck_overrides

__all__ = [
    'Observer', 'MinMaxObserver', 'EMAMinMaxObserver', 'HistogramObserver',
    'PercentileObserver', 'MSEObserver', 'KLObserver', 'Histogram',
    'mse_weight_clip', 'kl_threshold', 'OBSERVERS', 'observer_config',
    'build_observer', 'set_observers', 'minmax', 'minmax_per_channel',
    'QuantMode',
    'check_bits', 'weight_qparams', 'activation_qparams',
    'fake_quantize_weight', 'fake_quantize_activation', 'WeightFakeQuantize',
    'ActivationFakeQuantize', 'MIN_BITS', 'MAX_BITS', 'QConv2d', 'QLinear',
    'QuantLayerMixin', 'QUANT_TWINS', 'QuantReport', 'quantize_model',
    'apply_overrides', 'quant_layers', 'fake_quantizers',
    'free_activation_quantizers', 'set_bits',
    'get_bits', 'set_quant_mode', 'quant_mode', 'observing', 'quantizing',
    'reset_ranges', 'freeze_ranges', 'calibrate', 'paper_backbone_overrides',
    'paper_neck_overrides'
]
