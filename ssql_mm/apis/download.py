"""Download model-zoo checkpoints into a verified local cache.

A file enters the cache only complete and with the published SHA-256: bytes
arrive in a temporary file next to the target and are renamed into place
after the checks. A cached file whose hash matches is used without any
request, so the zoo works offline once a model was fetched.
"""
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

from mmengine.logging import MMLogger
from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                           TimeRemainingColumn, TransferSpeedColumn)

from .errors import ChecksumError, DownloadError, NotPublishedError
from .model_index import ModelEntry, get_model_entry, load_model_index

__all__ = [
    'cache_dir', 'sha256sum', 'resolve_url', 'download_checkpoint',
    'fetch_file'
]

PathLike = Union[str, os.PathLike]
_CHUNK = 1 << 16


def cache_dir() -> Path:
    """``$SSQL_MM_HOME/checkpoints``, by default ``~/.cache/ssql_mm/...``.

    Returns:
        Path: The checkpoint cache folder (not created here).
    """
    home = os.environ.get('SSQL_MM_HOME', '~/.cache/ssql_mm')
    return Path(home).expanduser() / 'checkpoints'


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


def _as_base_url(base: str) -> str:
    if '://' not in base:
        return Path(base).expanduser().resolve().as_uri()
    return base.rstrip('/')


def resolve_url(entry: ModelEntry, base_url: Optional[str] = None) -> str:
    """Where to fetch a model's checkpoint from.

    Args:
        entry (ModelEntry): The model.
        base_url (str, optional): Mirror holding the files by name: an
            ``http(s)://`` or ``file://`` URL or a local folder. Defaults to
            None, then ``$SSQL_MM_BASE_URL``, then the metafile's
            ``Weights`` (a URL, or a path relative to the index for files
            shipped with the package).

    Returns:
        str: The URL.

    Raises:
        NotPublishedError: No mirror given and no URL in the metafile.
    """
    base = base_url or os.environ.get('SSQL_MM_BASE_URL')
    if base and entry.file_name:
        return (f'{_as_base_url(base)}/'
                f'{urllib.parse.quote(entry.file_name)}')
    if entry.weights:
        if '://' not in entry.weights:  # a file shipped beside the index
            return Path(entry.root, entry.weights).resolve().as_uri()
        return entry.weights
    where = (f" A copy of '{entry.file_name}' (sha256 {entry.sha256}) can "
             'be served from a mirror or local folder named by '
             'SSQL_MM_BASE_URL.' if entry.file_name else '')
    raise NotPublishedError(
        f'The checkpoint of {entry.name} is not published.{where}'
        + (f' Note: {entry.note}' if entry.note else ''))


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
               timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` atomically, checking size and hash.

    Args:
        url (str): ``http(s)://`` or ``file://`` URL.
        dest (str | PathLike): Final path; its folder is created.
        sha256 (str, optional): Expected hex digest. Defaults to None.
        size (int, optional): Expected size in bytes. Defaults to None.
        progress (bool): Show a progress bar. Defaults to True.
        timeout (float): Socket timeout in seconds. Defaults to 60.

    Returns:
        Path: ``dest``.

    Raises:
        DownloadError: HTTP error, unreachable host or incomplete body.
        ChecksumError: Size or SHA-256 differ from the expected ones.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.NamedTemporaryFile(
        dir=dest.parent, prefix=f'.{dest.name}.', suffix='.part', delete=False)
    try:
        digest, received = hashlib.sha256(), 0
        try:
            with tmp, urllib.request.urlopen(url, timeout=timeout) as resp:
                length = resp.headers.get('Content-Length')
                expected = int(length) if length is not None else size
                with _progress(expected, dest.name, progress) as advance:
                    for chunk in iter(lambda: resp.read(_CHUNK), b''):
                        tmp.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        advance(len(chunk))
        except urllib.error.HTTPError as err:
            raise DownloadError(
                f'HTTP {err.code} ({err.reason}) for {url}') from None
        except (urllib.error.URLError, http.client.HTTPException,
                OSError) as err:
            raise DownloadError(f'Transfer of {url} failed: {err!r}') from None
        if length is not None and received != int(length):
            raise DownloadError(f'Transfer of {url} ended after {received} of '
                                f'{length} bytes.')
        if size is not None and received != size:
            raise ChecksumError(f'{url} has {received} bytes, the model index '
                                f'says {size}.')
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise ChecksumError(
                f'SHA-256 of {url} is {digest.hexdigest()}, the model index '
                f'says {sha256}; the file was discarded.')
        os.replace(tmp.name, dest)
    finally:
        if os.path.exists(tmp.name):
            os.unlink(tmp.name)
    return dest


def _entry_for_url(url: str,
                   index: Optional[PathLike]) -> Optional[ModelEntry]:
    name = urllib.parse.urlparse(url).path.rsplit('/', 1)[-1]
    try:
        entries = load_model_index(index).values()
    except FileNotFoundError:
        return None
    for entry in entries:
        if entry.weights == url or (entry.file_name == name
                                    and entry.sha256 is not None):
            return entry
    return None


def download_checkpoint(name_or_url: str,
                        dir: Optional[PathLike] = None,
                        base_url: Optional[str] = None,
                        progress: bool = True,
                        index: Optional[PathLike] = None,
                        timeout: float = 60.0) -> str:
    """Fetch a zoo checkpoint (or any URL) into the cache; return its path.

    Args:
        name_or_url (str): Model name from the index, or a URL.
        dir (str | PathLike, optional): Cache folder. Defaults to None,
            :func:`cache_dir`.
        base_url (str, optional): Mirror for model names, see
            :func:`resolve_url`. Defaults to None.
        progress (bool): Show a progress bar. Defaults to True.
        index (str | PathLike, optional): Model index to read. Defaults to
            None, the package's ``model-index.yml``.
        timeout (float): Socket timeout in seconds. Defaults to 60.

    Returns:
        str: Path of the verified local file.

    Raises:
        UnknownModelError: ``name_or_url`` is neither a URL nor a model.
        NotPublishedError: The model has no download location.
        DownloadError: The transfer failed; nothing is left in the cache.
        ChecksumError: Hash or size mismatch; nothing is left in the cache.
    """
    logger = MMLogger.get_current_instance()
    if '://' in name_or_url:
        url, entry = name_or_url, _entry_for_url(name_or_url, index)
        file_name = urllib.parse.unquote(
            urllib.parse.urlparse(url).path.rsplit('/', 1)[-1])
    else:
        entry = get_model_entry(name_or_url, index)
        url, file_name = resolve_url(entry, base_url), entry.file_name
    sha256 = entry.sha256 if entry else None
    size = entry.size if entry else None
    dest = Path(dir).expanduser() if dir is not None else cache_dir()
    dest = dest / file_name
    if dest.is_file():
        if sha256 is None or sha256sum(dest) == sha256.lower():
            logger.info(f'Using cached checkpoint {dest}')
            return str(dest)
        logger.warning(f'Cached {dest} does not match its SHA-256; '
                       'downloading it again.')
        dest.unlink()
    if sha256 is None:
        logger.warning(f'No SHA-256 is known for {url}: its integrity is '
                       'not verified.')
    logger.info(f'Downloading {url} to {dest}')
    return str(fetch_file(url, dest, sha256, size, progress, timeout))
