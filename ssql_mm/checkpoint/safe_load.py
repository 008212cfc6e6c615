"""Load checkpoints without executing code from the file.

``torch.load(weights_only=True)`` refuses every global that is not on an
allow-list. MMEngine checkpoints carry a few more than torch allows by
default: the message hub keeps ``HistoryBuffer`` objects holding numpy
arrays, and runtime values such as the ETA are numpy scalars. This module
allows exactly those, and nothing else, for every checkpoint MMEngine loads
once ``ssql_mm`` is imported.
"""
import os
import pickle
import re
from typing import IO, Any, Iterable, List, Optional, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader

__all__ = [
    'UnsafeCheckpointError', 'safe_load', 'safe_globals_for_mmengine',
    'register_safe_checkpoint_loader'
]

PathOrFile = Union[str, os.PathLike, IO[bytes]]

# numpy dtypes whose arrays and scalars may appear in the message hub. Object,
# string, void (structured) and datetime dtypes are left out on purpose: none
# of them is written by MMEngine, and object arrays could carry anything.
_NUMERIC_DTYPES = ('bool', 'int8', 'int16', 'int32', 'int64', 'uint8',
                   'uint16', 'uint32', 'uint64', 'float16', 'float32',
                   'float64')
# HistoryBuffer registers these lazily, in its first __init__.
_HISTORY_STATISTICS = frozenset(('min', 'max', 'current', 'mean'))


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """Stand-in for ``builtins.getattr`` while unpickling.

    A pickled ``HistoryBuffer`` refers to its statistics methods as
    ``getattr(HistoryBuffer, 'mean')``. Only that lookup is allowed: the
    class must be ``HistoryBuffer`` and the name one of its statistics.
    """
    known = _HISTORY_STATISTICS.union(HistoryBuffer._statistics_methods)
    if obj is not HistoryBuffer or name not in known:
        raise UnsafeCheckpointError(f'builtins.getattr({obj!r}, {name!r})',
                                    'a checkpoint')
    return getattr(obj, name)


def safe_globals_for_mmengine() -> List[Any]:
    """The allow-list used by :func:`safe_load`.

    Found by saving MMEngine ``Runner`` checkpoints (several schedulers,
    EMA hook, gradient clipping) and listing the globals they reference.

    Returns:
        list: Classes and functions, plus one ``(callable, name)`` pair that
        replaces ``builtins.getattr`` with a restricted lookup.
    """
    from numpy.core import multiarray
    allowed: List[Any] = [
        HistoryBuffer,
        multiarray._reconstruct,
        multiarray.scalar,
        np.ndarray,
        np.dtype,
        (_history_buffer_getattr, 'builtins.getattr'),
    ]
    allowed += [type(np.dtype(name)) for name in _NUMERIC_DTYPES]
    return allowed


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint needs more than the safe allow-list permits.

    Args:
        offending (str): The refused global (``module.name``), or a short
            description of the refused pickle content.
        source (str): The file, or a short description of it.
    """

    def __init__(self, offending: str, source: str) -> None:
        self.offending = offending
        super().__init__(
            f'Refused to load {source}: it needs {offending}, which the '
            'allow-list of ssql_mm.checkpoint.safe_load (tensors, '
            'containers, numpy arrays, MMEngine HistoryBuffer) does not '
            'permit. Unpickling it could run code stored in the file. If, '
            'and only if, you trust where the file came from, load it with '
            'safe_load(path, trusted=True) or pass --trust-checkpoint to '
            'the ssql_mm tools; to permit one more harmless class, pass it '
            'in extra_globals=[...].')


_GLOBAL_IN_MESSAGE = re.compile(r'GLOBAL ([\w.]+)')
_DETAIL_IN_MESSAGE = re.compile(r'WeightsUnpickler error:\s*(.+?)\n\s*\n',
                                re.S)


def _describe(path_or_fileobj: PathOrFile) -> str:
    if isinstance(path_or_fileobj, (str, os.PathLike)):
        return f"checkpoint '{os.fspath(path_or_fileobj)}'"
    return f"checkpoint {getattr(path_or_fileobj, 'name', 'stream')!r}"


def safe_load(path_or_fileobj: PathOrFile,
              map_location: Any = 'cpu',
              trusted: bool = False,
              extra_globals: Iterable[Any] = ()) -> Any:
    """Load a checkpoint with ``weights_only=True`` and a minimal allow-list.

    Args:
        path_or_fileobj (str | PathLike | file): Checkpoint to read.
        map_location (Any): As in ``torch.load``. Defaults to ``'cpu'``.
        trusted (bool): Skip the allow-list and unpickle everything, which
            may run code stored in the file. Use only for files whose origin
            you trust. Defaults to False.
        extra_globals (Iterable): More classes or functions to allow for
            this call only. Defaults to ().

    Returns:
        Any: The unpickled object, usually a dict.

    Raises:
        UnsafeCheckpointError: The file needs a global outside the list.
    """
    if trusted:
        return torch.load(
            path_or_fileobj, map_location=map_location, weights_only=False)
    allowed = safe_globals_for_mmengine() + list(extra_globals)
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(
                path_or_fileobj, map_location=map_location, weights_only=True)
    except UnsafeCheckpointError:
        raise
    except pickle.UnpicklingError as err:
        found = _GLOBAL_IN_MESSAGE.search(str(err))
        detail = _DETAIL_IN_MESSAGE.search(str(err))
        offending = found.group(1) if found else (
            'pickle content the weights-only unpickler does not accept'
            + (f' ({detail.group(1).strip()})' if detail else ''))
        raise UnsafeCheckpointError(offending,
                                    _describe(path_or_fileobj)) from None


def load_from_local_safe(filename: str, map_location: Any = None) -> Any:
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return safe_load(filename, map_location=map_location)


def load_from_http_safe(filename: str, map_location: Any = None) -> Any:
    # Imported here: the model zoo imports this module.
    from mmengine.dist import barrier, get_dist_info

    from ssql_mm.apis.download import download_checkpoint
    rank, world_size = get_dist_info()
    if rank == 0:
        path = download_checkpoint(filename)
    if world_size > 1:
        barrier()
        if rank > 0:
            path = download_checkpoint(filename)
    return safe_load(path, map_location=map_location)


# MMEngine logs ``loader.__name__[10:]`` as the backend: 'local_safe'.
_LOADERS: List[tuple] = [('', load_from_local_safe),
                         (('http://', 'https://'), load_from_http_safe)]


def register_safe_checkpoint_loader(
        loaders: Optional[List[tuple]] = None) -> None:
    """Make MMEngine's ``CheckpointLoader`` use :func:`safe_load`.

    Replaces the loaders for local paths (prefix ``''``) and for
    ``http(s)://`` URLs, so ``load_from``, ``resume`` and
    ``init_cfg=dict(type='Pretrained')`` all go through the allow-list, and
    downloads are cached and hash-checked by the ssql_mm model zoo.

    Args:
        loaders (list[tuple], optional): ``(prefixes, loader)`` pairs.
            Defaults to None, the two above.
    """
    for prefixes, loader in (loaders or _LOADERS):
        CheckpointLoader.register_scheme(
            prefixes=prefixes, loader=loader, force=True)

