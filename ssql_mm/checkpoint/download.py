"""Fetch checkpoint files into a verified local cache.

A file enters the cache only complete: bytes arrive in a ``.partial`` file
next to the target and are renamed into place after the checks (size,
SHA-256, and for files without a known hash the structure of a torch
checkpoint). A cached file is reused only when its SHA-256 is known and
matches, so the zoo works offline once a model was fetched; a file without a
known hash is fetched again every time. Every name that reaches the
filesystem is checked to stay inside the cache folder: a model index or a
mirror is input, not trusted code.

A mirror cannot hang a download or fill the disk: the deadline covers
connecting, the headers and the body (a watchdog shuts the socket down when
it passes), and the transfer stops as soon as it passes the size the index
lists, or :data:`MAX_DOWNLOAD_BYTES` for a file the index does not know.
"""
import functools
import hashlib
import http.client
import math
import os
import os.path as osp
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import (Any, BinaryIO, Callable, Iterator, List, Optional, Tuple,
                    Union)

from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                           TimeRemainingColumn, TransferSpeedColumn)

from .errors import (ChecksumError, DownloadError, DownloadTimeoutError,
                     UnsafePathError)
from .io import atomic_write
from .safe_load import check_structure

__all__ = [
    'cache_dir', 'cache_path', 'sha256sum', 'url_file_name', 'fetch_file',
    'fetch_to_cache', 'DEADLINE_ENV', 'MAX_DOWNLOAD_BYTES'
]

PathLike = Union[str, os.PathLike]
_CHUNK = 1 << 16
DEADLINE_ENV = 'SSQL_MM_DOWNLOAD_DEADLINE'
# Largest file fetched without a size from the model index (a plain URL).
MAX_DOWNLOAD_BYTES = 2 << 30


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


class _Watchdog:
    """Shuts down every socket it hands out once ``seconds`` have passed.

    A blocked ``connect``, header or body read then returns at once, so no
    server (one that trickles its headers included) outlives the deadline.

    Args:
        seconds (float, optional): The deadline; None never fires.
    """

    def __init__(self, seconds: Optional[float]) -> None:
        self.expired = False
        self._end = math.inf if seconds is None else time.monotonic() + \
            seconds
        self._sockets: List[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = None if seconds is None else threading.Timer(
            seconds, self._expire)

    def __enter__(self) -> '_Watchdog':
        if self._timer is not None:
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def connect(self, address: Tuple[str, int], timeout: Any = None,
                source_address: Any = None) -> socket.socket:
        """``socket.create_connection`` within the deadline, then watched."""
        left = self._end - time.monotonic()
        if left <= 0:
            raise TimeoutError('deadline passed before connecting')
        if isinstance(timeout, (int, float)):
            left = min(left, timeout)
        sock = socket.create_connection(address, left, source_address)
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)
        return sock


def _shut(sock: socket.socket) -> None:
    try:  # the plain socket's shutdown, also below a TLS layer
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class _WatchedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection whose socket comes from a :class:`_Watchdog`."""

    def __init__(self, *args: Any, watchdog: _Watchdog,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = watchdog.connect


class _WatchedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection whose socket comes from a :class:`_Watchdog`."""

    def __init__(self, *args: Any, watchdog: _Watchdog,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = watchdog.connect


class _WatchedHTTPHandler(urllib.request.HTTPHandler):

    def __init__(self, watchdog: _Watchdog) -> None:
        super().__init__()
        self.watchdog = watchdog

    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(functools.partial(
            _WatchedHTTPConnection, watchdog=self.watchdog), req)


class _WatchedHTTPSHandler(urllib.request.HTTPSHandler):

    def __init__(self, watchdog: _Watchdog) -> None:
        super().__init__()
        self.watchdog = watchdog

    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(functools.partial(
            _WatchedHTTPSConnection, watchdog=self.watchdog), req,
            context=self._context)


def _content_length(resp: Any, url: str) -> Optional[int]:
    length = resp.headers.get('Content-Length')
    if length is None:
        return None
    if not length.strip().isdigit():
        raise DownloadError(f'{url} sent the invalid Content-Length '
                            f'{length[:40]!r}; nothing was kept.')
    return int(length)


def _status(message: str) -> None:
    """A download's status line, on stderr (stdout carries a tool's
    results)."""
    print(message, file=sys.stderr, flush=True)


@contextmanager
def _progress(total: Optional[int], label: str,
              enabled: bool) -> Iterator[Callable[[int], None]]:
    columns = (TextColumn('{task.description}'), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    # stderr: a tool's stdout carries its results (tables, JSON, names)
    with Progress(*columns, disable=not enabled,
                  console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def fetch_file(url: str,
               dest: PathLike,
               sha256: Optional[str] = None,
               size: Optional[int] = None,
               progress: bool = True,
               timeout: float = 60.0,
               deadline: Optional[float] = None,
               max_bytes: Optional[int] = None) -> Path:
    """Download ``url`` to ``dest`` atomically, checking size and hash.

    Args:
        url (str): ``http(s)://`` or ``file://`` URL.
        dest (str | PathLike): Final path; its folder is created.
        sha256 (str, optional): Expected hex digest. Defaults to None, then
            the bytes must at least form a readable torch checkpoint.
        size (int, optional): Expected size in bytes; the transfer stops as
            soon as more arrive (at most one 64 KiB read more). Defaults to
            None.
        progress (bool): Show a progress bar. Defaults to True.
        timeout (float): Longest wait for any single read, in seconds.
            Defaults to 60.
        deadline (float, optional): Longest time for the whole transfer
            (connecting, headers and body), in seconds. Defaults to None:
            ``$SSQL_MM_DOWNLOAD_DEADLINE`` or no limit.
        max_bytes (int, optional): Largest file accepted when ``size`` is
            not known. Defaults to None, :data:`MAX_DOWNLOAD_BYTES` (2 GiB).

    Returns:
        Path: ``dest``.

    Raises:
        DownloadError: HTTP error, unreachable host, incomplete body, or a
            file over ``max_bytes``.
        DownloadTimeoutError: The deadline passed.
        ChecksumError: Size or SHA-256 differ from the expected ones.
        CheckpointWriteError: The file could not be written (disk full).
    """
    dest = Path(dest)
    deadline = _deadline(deadline)
    limit = size if size is not None else (
        MAX_DOWNLOAD_BYTES if max_bytes is None else max_bytes)
    start = time.monotonic()
    wait = timeout if deadline is None else min(timeout, deadline)
    watchdog = _Watchdog(deadline)
    opener = urllib.request.build_opener(_WatchedHTTPHandler(watchdog),
                                         _WatchedHTTPSHandler(watchdog))

    def timed_out(received: int) -> DownloadTimeoutError:
        return DownloadTimeoutError(
            f'Transfer of {url} did not finish within {deadline:g} s '
            f'({received} bytes received); nothing was kept. Retry, use '
            'a mirror (SSQL_MM_BASE_URL) or allow more time (deadline= / '
            f'{DEADLINE_ENV}).')

    def check_time(received: int) -> None:
        if watchdog.expired or (deadline is not None
                                and time.monotonic() - start > deadline):
            raise timed_out(received)

    def too_large(received: int) -> DownloadError:
        if size is not None:
            return ChecksumError(
                f'{url} sends more than the {size} bytes the model index '
                f'lists ({received} announced or received); the transfer '
                'was stopped and nothing was kept.')
        return DownloadError(
            f'{url} is larger than {limit} bytes ({received} announced or '
            'received), the most fetched for a file the model index does '
            'not list; the transfer was stopped and nothing was kept. If '
            'the file is right, allow more with max_bytes= (tools/'
            'model_zoo.py download --max-mib).')

    def network(call: Callable[[], Any], received: int) -> Any:
        try:
            return call()
        except urllib.error.HTTPError as err:
            raise DownloadError(
                f'HTTP {err.code} ({err.reason}) for {url}') from None
        except (OSError, http.client.HTTPException) as err:
            if watchdog.expired:
                raise timed_out(received) from None
            raise DownloadError(f'Transfer of {url} failed: {err!r}; nothing '
                                'was kept, try again.') from None

    def transfer(out: BinaryIO) -> None:
        digest, received = hashlib.sha256(), 0
        with watchdog, network(lambda: opener.open(url, timeout=wait),
                               0) as resp:
            length = _content_length(resp, url)
            if length is not None and length > limit:
                raise too_large(length)
            with _progress(length if length is not None else size, dest.name,
                           progress) as advance:
                while True:
                    check_time(received)
                    chunk = network(lambda: resp.read1(_CHUNK), received)
                    if not chunk:
                        break
                    received += len(chunk)
                    if received > limit:
                        raise too_large(received)
                    out.write(chunk)
                    digest.update(chunk)
                    advance(len(chunk))
            check_time(received)
        if length is not None and received != length:
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
                   deadline: Optional[float] = None,
                   max_bytes: Optional[int] = None) -> str:
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
        max_bytes (int, optional): See :func:`fetch_file`. Defaults to None.

    Returns:
        str: Path of the local file.
    """
    folder = Path(dir).expanduser() if dir is not None else cache_dir()
    dest = cache_path(folder, file_name, f'file name for {url}')
    if dest.is_file() and sha256 is not None:
        if sha256sum(dest) == sha256.lower():
            _status(f'Using cached checkpoint {dest}')
            return str(dest)
        _status(f'Cached {dest} does not match its SHA-256; downloading '
                'it again.')
    if sha256 is None:
        _status(f'No SHA-256 is known for {url}: its integrity is not '
                'verified, so it is downloaded again each time.')
    _status(f'Downloading {url} to {dest}')
    return str(fetch_file(url, dest, sha256, size, progress, timeout,
                          deadline, max_bytes))
