"""Post-training quantization by output reconstruction: AdaRound, BRECQ,
QDrop. Choose one by name with :func:`build_ptq` or
``ssql_mm.quantization.calibrate(..., ptq=...)``."""
from .adaround import (AdaRound, LearnedRounding, annealed_beta,
                       rectified_sigmoid, rectified_sigmoid_inverse,
                       rounding_regularizer)
from .brecq import BLOCK_TYPES, BRECQ, LearnedStep, block_units
from .qdrop import DroppedStep, QDrop
from .reconstruction import Learner, PTQReport, Reconstruction, UnitResult
from .registry import PTQ_METHODS, PTQSpec, build_ptq, ptq_config

__all__ = [
    'PTQ_METHODS', 'PTQSpec', 'ptq_config', 'build_ptq', 'Reconstruction',
    'Learner', 'PTQReport', 'UnitResult', 'AdaRound', 'LearnedRounding',
    'rectified_sigmoid', 'rectified_sigmoid_inverse', 'rounding_regularizer',
    'annealed_beta', 'BRECQ', 'LearnedStep', 'BLOCK_TYPES', 'block_units',
    'QDrop', 'DroppedStep'
]
