from .quant_calibration_hook import QuantCalibrationHook, sync_ranges

__all__ = ['QuantCalibrationHook', 'sync_ranges']
