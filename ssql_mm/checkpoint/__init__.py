"""Checkpoint loading and conversion.

Importing this package routes MMEngine's local and http(s) checkpoint
loading through :func:`safe_load`.
"""
from .conversion import ConversionReport, infer_resnet_depth
from .from_official import (convert_official_file, convert_official_ssql,
                            extract_backbone)
from .safe_load import (UnsafeCheckpointError, register_safe_checkpoint_loader,
                        safe_globals_for_mmengine, safe_load)
from .to_torchvision import (convert_to_torchvision,
                             convert_to_torchvision_file)

__all__ = [
    'ConversionReport', 'UnsafeCheckpointError', 'convert_official_file',
    'convert_official_ssql', 'convert_to_torchvision',
    'convert_to_torchvision_file', 'extract_backbone', 'infer_resnet_depth',
    'register_safe_checkpoint_loader', 'safe_globals_for_mmengine',
    'safe_load'
]

register_safe_checkpoint_loader()
