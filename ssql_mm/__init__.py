"""ssql_mm: SSQL (Synergistic Self-supervised and Quantization Learning) for
the OpenMMLab 2.x stack.

Importing the package registers its models and hooks in mmpretrain's
registries, so configs reach them with ``custom_imports=dict(imports=['ssql_mm'])``,
and applies the few MMEngine patches of :mod:`ssql_mm.compat` (silently;
``python -m ssql_mm.compat`` lists them, ``SSQL_MM_PATCHES=none`` opts out).
"""
from . import datasets, engine, models  # noqa: F401
from .compat import apply_patches
from .version import __version__

apply_patches()

__all__ = ['__version__']
