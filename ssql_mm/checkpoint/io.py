"""Write files so that a crash never leaves a half-written one in place.

Bytes go to a temporary ``.<name>.<random>.partial`` file in the target's
folder (128 random bits, created exclusively), are flushed to disk and then
renamed over the target, so the target is always either the old file or the
complete new one. The temporary file is created like any other file (mode
``0666`` minus the umask).

The writer holds an exclusive ``flock`` on its temporary file until the
rename. The next write into the folder removes every ``.partial`` file whose
lock it can take: the kernel releases a lock when its holder dies, so only
the files of dead writers go, whatever host, container or PID namespace the
live writers run in (the name holds no PID). On a file system without
``flock`` nothing is removed.
"""
import errno
import fcntl
import io
import os
import os.path as osp
import re
import secrets
from typing import Any, BinaryIO, Callable, Optional, Tuple, Union

import torch

from .errors import (CheckpointNotFoundError, CheckpointWriteError,
                     CorruptCheckpointError)

__all__ = [
    'atomic_write_bytes', 'atomic_write', 'check_writable',
    'checkpoint_bytes', 'write_checkpoint', 'remove_stale_partials',
    'read_last_checkpoint', 'PARTIAL_SUFFIX'
]

PathLike = Union[str, os.PathLike]
PARTIAL_SUFFIX = '.partial'
_PARTIAL = re.compile(r'^\..+\.[0-9a-f]{32}' + re.escape(PARTIAL_SUFFIX)
                      + '$')


def _same_file(path: str, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        named, opened = os.stat(path), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def remove_stale_partials(folder: PathLike) -> int:
    """Delete the ``.partial`` files of dead writers.

    A file is stale when its ``flock`` can be taken: a live writer holds it
    until its rename.

    Args:
        folder (str | PathLike): Folder to clean.

    Returns:
        int: Number of files removed.
    """
    removed = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    for name in names:
        if _PARTIAL.match(name) is None:
            continue
        path = osp.join(folder, name)
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _same_file(path, fd):
                os.remove(path)
                removed += 1
        except OSError:  # a live writer's lock, or no flock here
            pass
        finally:
            os.close(fd)
    return removed


def _open_partial(target: str) -> Tuple[str, BinaryIO]:
    """Create and lock a new temporary file next to ``target``."""
    folder = osp.dirname(target)
    base = osp.basename(target)
    while True:
        tmp = osp.join(folder,
                       f'.{base}.{secrets.token_hex(16)}{PARTIAL_SUFFIX}')
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # no flock on this file system: never cleaned
            pass
        # A cleaner may have taken the lock between creation and flock.
        if _same_file(tmp, fd):
            return tmp, os.fdopen(fd, 'w+b')
        os.close(fd)


def atomic_write(filepath: PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Let ``write`` fill a temporary file, then rename it to ``filepath``.

    Args:
        filepath (str | PathLike): Destination; its folder is created.
        write (Callable): Called with the open temporary file (binary,
            readable and writable).

    Raises:
        CheckpointWriteError: The write failed (e.g. disk full); the message
            names ``filepath`` and the previous file there is unchanged.
    """
    target = osp.abspath(os.fspath(filepath))
    folder = osp.dirname(target)
    try:
        os.makedirs(folder, exist_ok=True)
        remove_stale_partials(folder)
        tmp, f = _open_partial(target)
        with f:  # the lock on ``tmp`` is held until after the rename
            try:
                write(f)
                f.flush()
                os.fsync(f.fileno())
                os.replace(tmp, target)
            except BaseException:
                os.remove(tmp)
                raise
    except OSError as err:
        raise _write_error(target, err) from err


def _write_error(target: str, err: OSError) -> CheckpointWriteError:
    hint = ('free some space on that disk' if err.errno in (
        errno.ENOSPC, errno.EDQUOT) else 'check the folder exists and '
        'is writable')
    error = CheckpointWriteError(
        f"Could not write '{target}': {err.strerror or err}; {hint}, "
        'then save again (any previous file there is unchanged).')
    error.errno = err.errno
    return error


def check_writable(filepath: PathLike) -> None:
    """Fail now, before hours of work, if :func:`atomic_write` would fail.

    Creates the folder, then creates and removes a temporary file in it, as
    the write will.

    Args:
        filepath (str | PathLike): The file that will be written.

    Raises:
        CheckpointWriteError: The folder cannot be created or written, or
            ``filepath`` is a folder; the message names the path.
    """
    target = osp.abspath(os.fspath(filepath))
    if osp.isdir(target):
        raise _write_error(target, IsADirectoryError(
            errno.EISDIR, 'it is a folder, not a file name'))
    try:
        os.makedirs(osp.dirname(target), exist_ok=True)
        tmp, f = _open_partial(target)
        with f:
            os.remove(tmp)
    except OSError as err:
        raise _write_error(target, err) from err


def atomic_write_bytes(data: bytes, filepath: PathLike) -> None:
    """Write ``data`` to ``filepath`` atomically (see :func:`atomic_write`).

    Args:
        data (bytes): The content.
        filepath (str | PathLike): Destination; its folder is created.
    """
    atomic_write(filepath, lambda f: f.write(data))


def checkpoint_bytes(obj: Any) -> bytes:
    """``torch.save`` output of ``obj``, the same bytes for the same object.

    ``torch.save`` to a path names the archive's inner folder after the
    file, so equal objects saved under different names differ; serialising
    to memory always uses the same inner name.

    Args:
        obj (Any): What to save.

    Returns:
        bytes: The file content.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def write_checkpoint(obj: Any, filepath: PathLike) -> bytes:
    """Save ``obj`` reproducibly and atomically.

    Args:
        obj (Any): What to save (tensors, containers, plain values).
        filepath (str | PathLike): Destination.

    Returns:
        bytes: The bytes written.
    """
    data = checkpoint_bytes(obj)
    atomic_write_bytes(data, filepath)
    return data


def read_last_checkpoint(work_dir: PathLike) -> Optional[str]:
    """The checkpoint MMEngine's ``last_checkpoint`` pointer names, checked.

    Args:
        work_dir (str | PathLike): The run's work dir.

    Returns:
        str or None: The checkpoint path; None when there is no pointer.

    Raises:
        CorruptCheckpointError: The pointer is empty.
        CheckpointNotFoundError: It names a file that does not exist.
    """
    pointer = osp.join(os.fspath(work_dir), 'last_checkpoint')
    if not osp.isfile(pointer):
        return None
    with open(pointer, encoding='utf-8') as f:
        path = f.read().strip()
    if not path:
        raise CorruptCheckpointError(
            f"'{pointer}' is empty (a save interrupted by an older version?). "
            'Pass --resume PATH with a checkpoint of that folder, or delete '
            'the pointer to start afresh.')
    if not osp.isfile(path):
        raise CheckpointNotFoundError(
            f"'{pointer}' names '{path}', which does not exist. Pass --resume "
            'PATH with a checkpoint that exists, or delete the pointer to '
            'start afresh.')
    return path
