"""ssql_mm: SSQL (Synergistic Self-supervised and Quantization Learning) for
the OpenMMLab 2.x stack.

Importing the package registers its models and hooks in mmpretrain's
registries, so configs reach them with ``custom_imports=dict(imports=['ssql_mm'])``.
"""
from . import checkpoint  # noqa: F401  (safe checkpoint loading for MMEngine)
from . import datasets, engine, models  # noqa: F401
from .version import __version__

__all__ = ['__version__']
