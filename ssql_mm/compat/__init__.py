"""Every change ``ssql_mm`` makes to the OpenMMLab stack, in one place.

``import ssql_mm`` calls :func:`apply_patches` once. The import prints
nothing: what was changed is logged at debug level (logger ``ssql_mm.compat``),
said by :func:`describe_patches`, written once into every training log by
``tools/train.py``, and printed by ``python -m ssql_mm.compat``. The patches,
and what a downstream user (an mmdet or mmseg config with
``custom_imports=['ssql_mm']``) gets from each:

- ``atomic_writes``: MMEngine's local file backend writes through a
  temporary file and a rename (:func:`patch_local_backend`).
- ``safe_loading``: local checkpoints load with ``weights_only`` and a small
  allow-list; zoo URLs are cached and hash-checked; other URLs keep
  MMEngine's loader (:func:`patch_checkpoint_loaders`).
- ``checkpoint_hook``: ``last_checkpoint`` is written atomically and the
  ``max_keep_ckpts`` rotation deletes only after the new checkpoint exists
  (:func:`patch_checkpoint_hook`).

Set ``SSQL_MM_PATCHES=none`` before importing to apply none of them, or a
comma-separated list of names to apply only those. Registrations (models,
hooks, ``CPUDistributedDataParallel``) add names to the registries and change
nothing else; they are not patches.
"""
import logging
import os
from typing import Callable, Dict, List, Optional, Sequence

from .mmengine_patches import (patch_checkpoint_hook,
                               patch_checkpoint_loaders, patch_local_backend)

__all__ = [
    'PATCHES', 'PATCHES_ENV', 'apply_patches', 'applied_patches',
    'describe_patches',
    'patch_local_backend', 'patch_checkpoint_loaders', 'patch_checkpoint_hook'
]

PATCHES_ENV = 'SSQL_MM_PATCHES'
# name -> (function, what it changes, for the log line)
PATCHES: Dict[str, tuple] = {
    'atomic_writes': (patch_local_backend,
                      'atomic local file writes (LocalBackend)'),
    'safe_loading': (patch_checkpoint_loaders,
                     'safe checkpoint loading (local paths; http(s) for '
                     'model-zoo URLs)'),
    'checkpoint_hook': (patch_checkpoint_hook,
                        'crash-safe CheckpointHook (atomic last_checkpoint, '
                        'delete old checkpoints after saving)'),
}
_applied: List[str] = []
_logger = logging.getLogger(__name__)


def _requested(names: Optional[Sequence[str]]) -> List[str]:
    if names is None:
        value = os.environ.get(PATCHES_ENV, 'all').strip().lower()
        if value in ('', 'all'):
            return list(PATCHES)
        if value in ('none', '0', 'off'):
            return []
        names = [n.strip() for n in value.split(',') if n.strip()]
    unknown = sorted(set(names) - set(PATCHES))
    if unknown:
        raise ValueError(
            f'Unknown ssql_mm patch(es) {unknown} (from {PATCHES_ENV} or '
            f'apply_patches); choose from {list(PATCHES)}, "all" or "none".')
    return [n for n in PATCHES if n in names]


def apply_patches(names: Optional[Sequence[str]] = None) -> List[str]:
    """Apply the patches once; log at debug level which.

    Nothing is printed: a library import stays silent on stdout. Use
    :func:`describe_patches` (or ``python -m ssql_mm.compat``) to see them.

    Args:
        names (Sequence[str], optional): Patches to apply. Defaults to None:
            those named by ``$SSQL_MM_PATCHES`` (``all`` when unset).

    Returns:
        list[str]: The names applied by this call (empty when all of them
        were applied before).
    """
    todo = [n for n in _requested(names) if n not in _applied]
    for name in todo:
        function: Callable[[], None] = PATCHES[name][0]
        function()
        _applied.append(name)
    _logger.debug(describe_patches())
    return todo


def applied_patches() -> List[str]:
    """Names of the patches applied in this process.

    Returns:
        list[str]: In order of application.
    """
    return list(_applied)


def describe_patches() -> str:
    """One line saying which patches this process applied and how to opt out.

    Returns:
        str: E.g. ``ssql_mm patched MMEngine: atomic local file writes
        (LocalBackend); ... (set SSQL_MM_PATCHES=none to opt out, see
        docs/reliability.md)``.
    """
    if not _applied:
        return (f'ssql_mm: no MMEngine patch applied ({PATCHES_ENV}='
                f'{os.environ.get(PATCHES_ENV)!r})')
    return ('ssql_mm patched MMEngine: '
            + '; '.join(PATCHES[n][1] for n in _applied)
            + f' (set {PATCHES_ENV}=none to opt out, see '
            'docs/reliability.md)')
