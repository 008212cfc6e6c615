from .quant_calibration_hook import QuantCalibrationHook, sync_ranges
from .quant_hook import QuantHook, check_bit_range

__all__ = ['QuantCalibrationHook', 'sync_ranges', 'QuantHook', 'check_bit_range']
