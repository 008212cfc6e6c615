"""Load checkpoints without executing code from the file.

``torch.load(weights_only=True)`` refuses every global that is not on an
allow-list. MMEngine checkpoints carry a few more than torch allows by
default: the message hub keeps ``HistoryBuffer`` objects holding numpy
arrays, and runtime values such as the ETA are numpy scalars. This module
allows exactly those, and nothing else.

A file that cannot be read is told apart from one that asks for code: when
loading fails, the file's structure (zip archive, pickle opcodes) is checked
without running anything. Damaged structure is a
:class:`CorruptCheckpointError`; a well-formed file the allow-list refuses is
an :class:`UnsafeCheckpointError`. Both name the file.
"""
import io
import os
import pickle
import pickletools
import re
import zipfile
from typing import IO, Any, Dict, Iterable, List, Optional, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

from .errors import (CheckpointMismatchError, CheckpointNotFoundError,
                     CorruptCheckpointError, UnsafeCheckpointError)

__all__ = [
    'safe_load', 'read_checkpoint', 'safe_globals_for_mmengine',
    'check_structure', 'MAX_INFLATION'
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
# The legacy (non-zip) torch format starts with four pickles: magic number,
# protocol version, system info and the object itself.
_LEGACY_PICKLES = 4
# torch.save writes stored (uncompressed) zip members, so a checkpoint's
# members add up to about its file size. Deflated members could inflate a
# thousandfold (a "zip bomb"); a load may inflate at most this many times the
# file's size.
MAX_INFLATION = 4
# Messages of torch / miniz that mean the bytes ran out or are mangled.
_DAMAGE_MESSAGE = re.compile(r'EOF|truncated|corrupt|central directory|'
                             r'zip archive|Invalid magic number', re.I)


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


def _numeric_dtype(*args: Any) -> np.dtype:
    """Stand-in for ``numpy.dtype`` while unpickling: numeric dtypes only.

    A pickle can call ``numpy.dtype('O8', ...)`` without any other global
    and fill an array of that dtype with arbitrary objects.
    """
    dtype = np.dtype(*args)
    if dtype.name not in _NUMERIC_DTYPES:
        raise UnsafeCheckpointError(
            f'numpy.dtype({args[0]!r}), a {dtype.name} dtype (only numeric '
            'numpy arrays are allowed)', 'a checkpoint')
    return dtype


def safe_globals_for_mmengine() -> List[Any]:
    """The allow-list used by :func:`safe_load`.

    Found by saving MMEngine ``Runner`` checkpoints (several schedulers,
    EMA hook, gradient clipping) and listing the globals they reference.

    Returns:
        list: Classes and functions, plus ``(callable, name)`` pairs that
        replace ``builtins.getattr`` and ``numpy.dtype`` with restricted
        versions.
    """
    from numpy.core import multiarray
    allowed: List[Any] = [
        HistoryBuffer,
        multiarray._reconstruct,
        multiarray.scalar,
        np.ndarray,
        (_numeric_dtype, 'numpy.dtype'),
        (_history_buffer_getattr, 'builtins.getattr'),
    ]
    allowed += [type(np.dtype(name)) for name in _NUMERIC_DTYPES]
    return allowed


_GLOBAL_IN_MESSAGE = re.compile(r'GLOBAL ([\w.]+)')
_DETAIL_IN_MESSAGE = re.compile(r'WeightsUnpickler error:\s*(.+?)\n\s*\n',
                                re.S)


def _describe(path_or_fileobj: PathOrFile) -> str:
    if isinstance(path_or_fileobj, (str, os.PathLike)):
        return f"checkpoint '{os.fspath(path_or_fileobj)}'"
    return f"checkpoint {getattr(path_or_fileobj, 'name', 'stream')!r}"


def _read_all(path_or_fileobj: PathOrFile) -> Optional[bytes]:
    if isinstance(path_or_fileobj, (str, os.PathLike)):
        with open(path_or_fileobj, 'rb') as f:
            return f.read()
    if not (hasattr(path_or_fileobj, 'seek')
            and path_or_fileobj.seekable()):
        return None
    position = path_or_fileobj.tell()
    path_or_fileobj.seek(0)
    try:
        return path_or_fileobj.read()
    finally:
        path_or_fileobj.seek(position)


def _check_pickles(data: bytes, count: int) -> None:
    """Parse up to ``count`` consecutive pickles without running them."""
    stream = io.BytesIO(data)
    for i in range(count):
        if i > 0 and stream.tell() == len(data):
            return  # a plain pickle file: one pickle, then the end
        # dis() simulates the stack and memo, so it also refuses byte soup
        # that happens to decode as opcodes.
        pickletools.dis(stream, out=io.StringIO())


def _inflation(zip_file: IO[bytes]) -> Optional[str]:
    """What is wrong with the sizes a zip archive declares, or None.

    Only the central directory is read. miniz refuses a member that inflates
    to more than its declared size, so the declared sizes bound a load.
    """
    size = zip_file.seek(0, io.SEEK_END)
    zip_file.seek(0)
    try:
        with zipfile.ZipFile(zip_file) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return None  # damage; torch.load and check_structure name it
    if inflated <= MAX_INFLATION * size:
        return None
    return (f'a zip archive of {size / 2**20:.2f} MiB that inflates to '
            f'{inflated / 2**20:.2f} MiB, more than {MAX_INFLATION} times '
            'its size (torch.save writes uncompressed archives)')


def check_structure(path_or_fileobj: PathOrFile) -> Optional[str]:
    """What is wrong with a file's structure, without unpickling it.

    Checks that the file is non-empty, that a zip checkpoint's archive (all
    members in one top-level folder, at most :data:`MAX_INFLATION` times
    the file's size once inflated) and its ``data.pkl`` are intact, and
    that a legacy or plain pickle parses. Tensor bytes are not checked.

    Args:
        path_or_fileobj (str | PathLike | file): The file.

    Returns:
        str or None: A short description of the damage, or None when the
        structure is sound (or a stream cannot be re-read).
    """
    data = _read_all(path_or_fileobj)
    if data is None:
        return None
    if not data:
        return 'empty (0 bytes)'
    try:
        if data[:2] == b'PK':
            inflation = _inflation(io.BytesIO(data))
            if inflation is not None:
                return inflation
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = archive.namelist()
                tops = {n.split('/', 1)[0] for n in names}
                if len(tops) > 1 or any('/' not in n for n in names):
                    return (f'a zip archive with members outside one '
                            f'top-level folder ({", ".join(sorted(tops))}), '
                            'which torch checkpoints never have')
                pkl = [n for n in names if n.endswith('data.pkl')]
                if not pkl:
                    return (f'a zip archive of {len(data)} bytes without the '
                            'data.pkl of a torch checkpoint')
                _check_pickles(archive.read(pkl[0]), 1)
        else:
            _check_pickles(data, _LEGACY_PICKLES)
    except (zipfile.BadZipFile, ValueError, EOFError, KeyError,
            IndexError, TypeError, OSError, RuntimeError) as err:
        kind = 'zip archive' if data[:2] == b'PK' else 'pickle'
        return (f'not a readable {kind} ({len(data)} bytes): '
                f'{str(err).strip() or type(err).__name__}')
    return None


def _corrupt(source: str, damage: str) -> CorruptCheckpointError:
    return CorruptCheckpointError(
        f'The {source} is {damage}. It is damaged or cut short (an '
        'interrupted save, copy or download?); nothing in it was run. Use '
        'another checkpoint (e.g. an earlier epoch_*.pth), or delete this '
        'one and save or download it again.')


def _check_inflation(path_or_fileobj: PathOrFile, source: str) -> None:
    """Refuse a zip checkpoint that would inflate far beyond its size."""
    if isinstance(path_or_fileobj, (str, os.PathLike)):
        with open(path_or_fileobj, 'rb') as f:
            found = _inflation(f) if f.read(2) == b'PK' else None
    elif hasattr(path_or_fileobj, 'seek') and path_or_fileobj.seekable():
        position = path_or_fileobj.tell()
        try:
            path_or_fileobj.seek(0)
            found = (_inflation(path_or_fileobj)
                     if path_or_fileobj.read(2) == b'PK' else None)
        finally:
            path_or_fileobj.seek(position)
    else:
        return
    if found is not None:
        raise CorruptCheckpointError(
            f'Refused to load the {source}: it is {found}. Loading it could '
            'exhaust memory (a "zip bomb"); nothing in it was read. Use a '
            'checkpoint saved by torch.save.')


def _check_exists(path_or_fileobj: PathOrFile) -> None:
    if isinstance(path_or_fileobj, (str, os.PathLike)) and not os.path.isfile(
            path_or_fileobj):
        name = os.fspath(path_or_fileobj)
        raise CheckpointNotFoundError(
            f"Checkpoint '{name}' does not exist"
            + (' (the path is empty)' if not name else '')
            + '; pass the path of a saved checkpoint file.')


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
            you trust; a damaged file is still refused before unpickling.
            Defaults to False.
        extra_globals (Iterable): More classes or functions to allow for
            this call only. Defaults to ().

    Returns:
        Any: The unpickled object, usually a dict.

    Raises:
        CheckpointNotFoundError: No file at that path.
        CorruptCheckpointError: The file is empty, truncated or not a
            checkpoint, or a zip archive that would inflate to more than
            :data:`MAX_INFLATION` times its size.
        UnsafeCheckpointError: A well-formed file needs a global outside the
            allow-list.
    """
    _check_exists(path_or_fileobj)
    source = _describe(path_or_fileobj)
    _check_inflation(path_or_fileobj, source)
    if trusted:
        damage = check_structure(path_or_fileobj)
        if damage is not None:
            raise _corrupt(source, damage)
    try:
        if trusted:
            return torch.load(path_or_fileobj, map_location=map_location,
                              weights_only=False)
        allowed = safe_globals_for_mmengine() + list(extra_globals)
        with torch.serialization.safe_globals(allowed):
            return torch.load(path_or_fileobj, map_location=map_location,
                              weights_only=True)
    except UnsafeCheckpointError as err:  # from the restricted getattr
        raise UnsafeCheckpointError(err.offending, source) from None
    except Exception as err:
        damage = check_structure(path_or_fileobj)
        if damage is None and not isinstance(err, pickle.UnpicklingError) \
                and (isinstance(err, EOFError)
                     or _DAMAGE_MESSAGE.search(str(err))):
            damage = f'unreadable ({str(err).splitlines()[0][:120]})'
        if damage is not None:
            raise _corrupt(source, damage) from None
        if isinstance(err, pickle.UnpicklingError) and not trusted:
            found = _GLOBAL_IN_MESSAGE.search(str(err))
            detail = _DETAIL_IN_MESSAGE.search(str(err))
            offending = found.group(1) if found else (
                'pickle content the weights-only unpickler does not accept'
                + (f' ({detail.group(1).strip()})' if detail else ''))
            raise UnsafeCheckpointError(offending, source) from None
        err.add_note(f'while loading {source}')
        raise


def read_checkpoint(path: Union[str, os.PathLike],
                    map_location: Any = 'cpu',
                    trusted: bool = False) -> Dict[str, Any]:
    """:func:`safe_load` a file that must hold a dict (a checkpoint).

    Args:
        path (str | PathLike): The file.
        map_location (Any): As in ``torch.load``. Defaults to ``'cpu'``.
        trusted (bool): See :func:`safe_load`. Defaults to False.

    Returns:
        dict: The checkpoint.

    Raises:
        CheckpointMismatchError: The file holds something else than a dict.
    """
    loaded = safe_load(path, map_location=map_location, trusted=trusted)
    if not isinstance(loaded, dict):
        raise CheckpointMismatchError(
            f"Checkpoint '{os.fspath(path)}' holds a {type(loaded).__name__}, "
            'not a dict of weights; pass a file saved by MMEngine or '
            'torch.save(model.state_dict()).')
    return loaded
