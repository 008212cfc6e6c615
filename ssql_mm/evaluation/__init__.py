"""Evaluation at any bit-width: kNN and linear probes, the bit-width sweep."""
from .bit_settings import BitSetting, parse_bit_setting, parse_bit_settings
from .features import calibrate_backbone, extract_features, normalized_batches
from .image_folder import ImageFolderSplit, find_images, load_split
from .knn import knn_top1
from .linear_probe import linear_probe_top1
from .pretrained_backbone import PretrainedBackbone, load_pretrained
from .report import (format_table, plot_sweep, write_csv, write_json,
                     write_report)
from .sweep import SweepConfig, SweepResult, run_bit_sweep
from .transfer import run_qat_transfer, run_transfer

__all__ = [
    'BitSetting', 'parse_bit_setting', 'parse_bit_settings',
    'calibrate_backbone', 'extract_features', 'normalized_batches',
    'ImageFolderSplit', 'find_images', 'load_split', 'knn_top1',
    'linear_probe_top1', 'PretrainedBackbone', 'load_pretrained',
    'format_table', 'plot_sweep', 'write_csv',
    'write_json', 'write_report', 'SweepConfig', 'SweepResult',
    'run_bit_sweep', 'run_qat_transfer', 'run_transfer'
]
