"""Checkpoint files: safe loading, atomic writing, fetching, the state dict
inside them, and exporting or converting their keys.

This package is the one home of checkpoint logic; it sits below ``apis``,
``models`` and ``evaluation``, which import from it. It changes nothing in
MMEngine by itself: ``ssql_mm.compat`` routes MMEngine's loading through
:func:`safe_load`.
"""
from .download import (cache_dir, cache_path, fetch_file, fetch_to_cache,
                       sha256sum, url_file_name)
from .errors import (CLOSED_STDOUT_STATUS, CheckpointError,
                     CheckpointMismatchError, CheckpointNotFoundError,
                     CheckpointWriteError, ChecksumError,
                     CorruptCheckpointError, DownloadError,
                     DownloadTimeoutError, PretrainedMismatchError,
                     UnsafeCheckpointError, UnsafePathError, report_errors)
from .export import BACKBONE_FORMATS, export_backbone, export_backbone_file
from .from_official import convert_official_file, convert_official_ssql
from .io import (atomic_write, atomic_write_bytes, check_writable,
                 checkpoint_bytes, read_last_checkpoint,
                 remove_stale_partials, write_checkpoint)
from .pretrained_fit import (check_backbone_state, check_finite_state,
                             check_finite_weights, check_resume_checkpoint,
                             load_pretrained_state, pretrained_init_cfg)
from .report import ConversionReport
from .resnet import (RESNET_LAYOUTS, check_resnet_depth, find_resnet_depth,
                     infer_resnet_depth)
from .safe_load import (check_structure, read_checkpoint,
                        safe_globals_for_mmengine, safe_load)
from .state_dict import (is_range_key, select_prefix, top_level_prefixes,
                         unwrap_state_dict)

__all__ = [
    'BACKBONE_FORMATS', 'CLOSED_STDOUT_STATUS', 'CheckpointError',
    'CheckpointMismatchError', 'CheckpointNotFoundError',
    'CheckpointWriteError', 'ChecksumError',
    'ConversionReport', 'CorruptCheckpointError', 'DownloadError',
    'DownloadTimeoutError', 'PretrainedMismatchError', 'RESNET_LAYOUTS',
    'UnsafeCheckpointError', 'UnsafePathError', 'atomic_write',
    'atomic_write_bytes', 'cache_dir', 'cache_path', 'check_backbone_state',
    'check_finite_state', 'check_finite_weights', 'check_resume_checkpoint',
    'check_writable', 'check_resnet_depth', 'check_structure',
    'checkpoint_bytes',
    'convert_official_file', 'convert_official_ssql', 'export_backbone',
    'export_backbone_file', 'fetch_file', 'fetch_to_cache',
    'find_resnet_depth', 'infer_resnet_depth', 'is_range_key',
    'load_pretrained_state', 'pretrained_init_cfg', 'read_checkpoint',
    'read_last_checkpoint',
    'remove_stale_partials', 'report_errors', 'safe_globals_for_mmengine',
    'safe_load', 'select_prefix', 'sha256sum', 'top_level_prefixes',
    'unwrap_state_dict', 'url_file_name', 'write_checkpoint'
]
