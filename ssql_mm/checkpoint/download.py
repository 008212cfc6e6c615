"""Fetch checkpoint files into a verified local cache.

A file enters the cache only complete: bytes arrive in a ``.partial`` file
next to the target and are renamed into place after the checks (size,
SHA-256, and for files without a known hash the structure of a torch
checkpoint). A cached file is reused only when its SHA-256 is known and
matches, so the zoo works offline once a model was fetched; a file without a
known hash is fetched again every time. Every name that reaches the
filesystem is checked to stay inside the cache folder: a model index or a
mirror is input, not trusted code.
"""
import hashlib
import http.client
import os
import os.path as osp
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Optional, Union

from mmengine.logging import MMLogger
from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                           TimeRemainingColumn, TransferSpeedColumn)

from .errors import (ChecksumError, DownloadError, DownloadTimeoutError,
                     UnsafePathError)
from .io import atomic_write
from .safe_load import check_structure

__all__ = [
    'cache_dir', 'cache_path', 'sha256sum', 'url_file_name', 'fetch_file',
    'fetch_to_cache', 'DEADLINE_ENV'
]

PathLike = Union[str, os.PathLike]
_CHUNK = 1 << 16
DEADLINE_ENV = 'SSQL_MM_DOWNLOAD_DEADLINE'


def cache_dir() -> Path:
    """``$SSQL_MM_HOME/checkpoints``, by default ``~/.cache/ssql_mm/...``.

    Returns:
        Path: The checkpoint cache folder (not created here).
    """
    home = os.environ.get('SSQL_MM_HOME', '~/.cache/ssql_mm')
    return Path(home).expanduser() / 'checkpoints'


def cache_path(folder: PathLike, name: str, origin: str = 'name') -> Path:
    """``folder / name``, refusing any name that leaves ``folder``.

    Args:
        folder (str | PathLike): The cache folder.
        name (str): A file name, possibly with sub-folders
            (``'sub/x.pth'``).
        origin (str): Where the name comes from, for the message.
            Defaults to 'name'.

    Returns:
        Path: The target path, inside ``folder``.

    Raises:
        UnsafePathError: Empty, absolute, ``..``-escaping or NUL-containing
            names, and names that resolve (through links) outside.
    """
    root = osp.realpath(osp.expanduser(os.fspath(folder)))
    bad = (not name or '\0' in name or osp.isabs(name) or '\\' in name
           or name.strip('/.') == '')
    target = osp.realpath(osp.join(root, name)) if not bad else ''
    if bad or osp.commonpath([root, target]) != root or target == root:
        raise UnsafePathError(
            f'Refused to write {name!r} ({origin}): the file would land '
            f"outside the cache folder '{root}'. Fix the model index entry "
            "or URL so that the file name is a plain name such as "
            "'model_1a2b3c4d.pth'.")
    return Path(target)


def sha256sum(path: PathLike) -> str:
    """Hex SHA-256 of a file.

    Args:
        path (str | PathLike): The file.

    Returns:
        str: 64 hex digits.
    """
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def url_file_name(url: str) -> str:
    """The decoded last path segment of a URL (not yet checked).

    Args:
        url (str): The URL.

    Returns:
        str: E.g. ``'x.pth'`` for ``http://host/a/x.pth?dl=1``.
    """
    return urllib.parse.unquote(
        urllib.parse.urlparse(url).path.rsplit('/', 1)[-1])


def _deadline(deadline: Optional[float]) -> Optional[float]:
    if deadline is None and os.environ.get(DEADLINE_ENV):
        deadline = float(os.environ[DEADLINE_ENV])
    if deadline is not None and deadline <= 0:
        raise ValueError(f'The download deadline must be > 0 seconds, got '
                         f'{deadline}.')
    return deadline


@contextmanager
def _progress(total: Optional[int], label: str,
              enabled: bool) -> Iterator[Callable[[int], None]]:
    columns = (TextColumn('{task.description}'), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not enabled) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def fetch_file(url: str,
               dest: PathLike,
               sha256: Optional[str] = None,
               size: Optional[int] = None,
               progress: bool = True,
               timeout: float = 60.0,
               deadline: Optional[float] = None) -> Path:
    """Download ``url`` to ``dest`` atomically, checking size and hash.

    Args:
        url (str): ``http(s)://`` or ``file://`` URL.
        dest (str | PathLike): Final path; its folder is created.
        sha256 (str, optional): Expected hex digest. Defaults to None, then
            the bytes must at least form a readable torch checkpoint.
        size (int, optional): Expected size in bytes. Defaults to None.
        progress (bool): Show a progress bar. Defaults to True.
        timeout (float): Longest wait for any single read, in seconds.
            Defaults to 60.
        deadline (float, optional): Longest time for the whole transfer, in
            seconds. Defaults to None: ``$SSQL_MM_DOWNLOAD_DEADLINE`` or no
            limit.

    Returns:
        Path: ``dest``.

    Raises:
        DownloadError: HTTP error, unreachable host or incomplete body.
        DownloadTimeoutError: The deadline passed.
        ChecksumError: Size or SHA-256 differ from the expected ones.
        CheckpointWriteError: The file could not be written (disk full).
    """
    dest = Path(dest)
    deadline = _deadline(deadline)
    start = time.monotonic()
    wait = timeout if deadline is None else min(timeout, deadline)

    def check_time(received: int) -> None:
        if deadline is not None and time.monotonic() - start > deadline:
            raise DownloadTimeoutError(
                f'Transfer of {url} did not finish within {deadline:g} s '
                f'({received} bytes received); nothing was kept. Retry, use '
                'a mirror (SSQL_MM_BASE_URL) or allow more time (deadline= / '
                f'{DEADLINE_ENV}).')

    def transfer(out: BinaryIO) -> None:
        digest, received = hashlib.sha256(), 0
        try:
            with urllib.request.urlopen(url, timeout=wait) as resp:
                length = resp.headers.get('Content-Length')
                expected = int(length) if length is not None else size
                with _progress(expected, dest.name, progress) as advance:
                    while True:
                        check_time(received)
                        chunk = resp.read1(_CHUNK)
                        if not chunk:
                            break
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        advance(len(chunk))
                check_time(received)
        except urllib.error.HTTPError as err:
            raise DownloadError(
                f'HTTP {err.code} ({err.reason}) for {url}') from None
        except (urllib.error.URLError, http.client.HTTPException,
                TimeoutError, ConnectionError) as err:
            raise DownloadError(f'Transfer of {url} failed: {err!r}; nothing '
                                'was kept, try again.') from None
        if length is not None and received != int(length):
            raise DownloadError(f'Transfer of {url} ended after {received} of '
                                f'{length} bytes; nothing was kept, try '
                                'again.')
        if size is not None and received != size:
            raise ChecksumError(f'{url} has {received} bytes, the model index '
                                f'says {size}; the file was discarded.')
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise ChecksumError(
                f'SHA-256 of {url} is {digest.hexdigest()}, the model index '
                f'says {sha256}; the file was discarded.')
        if sha256 is None:
            out.flush()
            damage = check_structure(out)
            if damage is not None:
                raise DownloadError(
                    f'Transfer of {url} gave {received} bytes that are not a '
                    f'complete checkpoint ({damage}); the server may have '
                    'closed the connection early. Nothing was kept; try '
                    'again.')

    atomic_write(dest, transfer)
    return dest


def fetch_to_cache(url: str,
                   file_name: str,
                   sha256: Optional[str] = None,
                   size: Optional[int] = None,
                   dir: Optional[PathLike] = None,
                   progress: bool = True,
                   timeout: float = 60.0,
                   deadline: Optional[float] = None) -> str:
    """Fetch ``url`` into the cache as ``file_name``, or reuse a verified copy.

    Args:
        url (str): Where the file is.
        file_name (str): Name in the cache (checked to stay inside it).
        sha256 (str, optional): Expected SHA-256. Defaults to None: the file
            is not verified, so it is fetched again on every call.
        size (int, optional): Expected size. Defaults to None.
        dir (str | PathLike, optional): Cache folder. Defaults to None,
            :func:`cache_dir`.
        progress (bool): Show a progress bar. Defaults to True.
        timeout (float): See :func:`fetch_file`. Defaults to 60.
        deadline (float, optional): See :func:`fetch_file`. Defaults to None.

    Returns:
        str: Path of the local file.
    """
    logger = MMLogger.get_current_instance()
    folder = Path(dir).expanduser() if dir is not None else cache_dir()
    dest = cache_path(folder, file_name, f'file name for {url}')
    if dest.is_file() and sha256 is not None:
        if sha256sum(dest) == sha256.lower():
            logger.info(f'Using cached checkpoint {dest}')
            return str(dest)
        logger.warning(f'Cached {dest} does not match its SHA-256; '
                       'downloading it again.')
    if sha256 is None:
        logger.warning(f'No SHA-256 is known for {url}: its integrity is '
                       'not verified, so it is downloaded again each time.')
    logger.info(f'Downloading {url} to {dest}')
    return str(fetch_file(url, dest, sha256, size, progress, timeout,
                          deadline))
