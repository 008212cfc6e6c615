"""Checkpoint loading and conversion.

Importing this package routes MMEngine's local and http(s) checkpoint
loading through :func:`safe_load`.
"""
from .safe_load import (UnsafeCheckpointError, register_safe_checkpoint_loader,
                        safe_globals_for_mmengine, safe_load)

__all__ = [
    'UnsafeCheckpointError', 'register_safe_checkpoint_loader',
    'safe_globals_for_mmengine', 'safe_load'
]

register_safe_checkpoint_loader()
