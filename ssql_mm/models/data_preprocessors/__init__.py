"""Data preprocessors that run augmentation on whole batches."""
from .batch_view_preprocessor import BatchViewPreprocessor

__all__ = ['BatchViewPreprocessor']
