"""Model utilities that are not modules: checkpoint extraction."""
from .extract import (BACKBONE_FORMATS, ExtractReport, extract_backbone,
                      save_backbone)

__all__ = [
    'BACKBONE_FORMATS', 'ExtractReport', 'extract_backbone', 'save_backbone'
]
