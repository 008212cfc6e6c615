from .quant_calibration_hook import QuantCalibrationHook, sync_ranges
from .quant_hook import QuantHook, check_bit_range
from .random_state_hook import RandomStateHook

__all__ = [
    'QuantCalibrationHook', 'sync_ranges', 'QuantHook', 'check_bit_range',
    'RandomStateHook'
]
