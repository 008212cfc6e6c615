"""Resolve a model name or URL to a download, fetched into the cache.

The fetching itself (verified cache, atomic writes, names kept inside the
cache, deadline) is :func:`ssql_mm.checkpoint.fetch_to_cache`; this module
only finds what to fetch: the URL, file name, SHA-256 and size that the model
index gives a name or a known URL.
"""
import os
import urllib.parse
from pathlib import Path
from typing import Optional, Union

from ssql_mm.checkpoint import fetch_to_cache, url_file_name
from .errors import NotPublishedError, UnknownModelError
from .model_index import ModelEntry, get_model_entry, load_model_index

__all__ = [
    'resolve_url', 'download_checkpoint', 'entry_for_url', 'is_zoo_url',
    'BASE_URL_ENV'
]

PathLike = Union[str, os.PathLike]
BASE_URL_ENV = 'SSQL_MM_BASE_URL'


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
    base = base_url or os.environ.get(BASE_URL_ENV)
    if base and entry.file_name:
        return (f'{_as_base_url(base)}/'
                f'{urllib.parse.quote(entry.file_name)}')
    if entry.weights:
        if '://' not in entry.weights:  # a file shipped beside the index
            return Path(entry.root, entry.weights).resolve().as_uri()
        return entry.weights
    where = (f" A copy of '{entry.file_name}' (sha256 {entry.sha256}) can "
             'be served from a mirror or local folder named by '
             f'{BASE_URL_ENV}.' if entry.file_name else '')
    raise NotPublishedError(
        f'The checkpoint of {entry.name} is not published.{where}'
        + (f' Note: {entry.note}' if entry.note else ''))


def entry_for_url(url: str,
                  index: Optional[PathLike] = None) -> Optional[ModelEntry]:
    """The zoo model a URL downloads, found by URL or by hashed file name.

    Args:
        url (str): A checkpoint URL.
        index (str | PathLike, optional): Model index to read. Defaults to
            None, the package's ``model-index.yml``.

    Returns:
        ModelEntry or None: The entry whose ``Weights`` is ``url``, or whose
        file (with a known SHA-256) has the URL's file name.
    """
    name = url_file_name(url)
    try:
        entries = load_model_index(index).values()
    except FileNotFoundError:
        return None
    for entry in entries:
        if entry.weights == url or (entry.file_name == name
                                    and entry.sha256 is not None):
            return entry
    return None


def is_zoo_url(url: str, index: Optional[PathLike] = None) -> bool:
    """Whether a URL is one of ours: a zoo file or under the mirror.

    Args:
        url (str): A checkpoint URL.
        index (str | PathLike, optional): See :func:`entry_for_url`.

    Returns:
        bool: True for URLs of the model index or below
        ``$SSQL_MM_BASE_URL``.
    """
    base = os.environ.get(BASE_URL_ENV)
    if base and url.startswith(_as_base_url(base) + '/'):
        return True
    return entry_for_url(url, index) is not None


def download_checkpoint(name_or_url: str,
                        dir: Optional[PathLike] = None,
                        base_url: Optional[str] = None,
                        progress: bool = True,
                        index: Optional[PathLike] = None,
                        timeout: float = 60.0,
                        deadline: Optional[float] = None,
                        max_bytes: Optional[int] = None) -> str:
    """Fetch a zoo checkpoint (or any URL) into the cache; return its path.

    Args:
        name_or_url (str): Model name from the index, or a URL.
        dir (str | PathLike, optional): Cache folder. Defaults to None,
            ``$SSQL_MM_HOME/checkpoints``.
        base_url (str, optional): Mirror for model names, see
            :func:`resolve_url`. Defaults to None.
        progress (bool): Show a progress bar. Defaults to True.
        index (str | PathLike, optional): Model index to read. Defaults to
            None, the package's ``model-index.yml``.
        timeout (float): Longest wait for any single read, in seconds.
            Defaults to 60.
        deadline (float, optional): Longest time for the whole transfer
            (connecting, headers, body), in seconds. Defaults to None:
            ``$SSQL_MM_DOWNLOAD_DEADLINE`` or no limit.
        max_bytes (int, optional): Largest file fetched when the index
            lists no size (a plain URL). Defaults to None, 2 GiB
            (``MAX_DOWNLOAD_BYTES``); with a size, the transfer stops as
            soon as it exceeds that size.

    Returns:
        str: Path of the local file (verified when the index knows its
        SHA-256).

    Raises:
        UnknownModelError: ``name_or_url`` is neither a URL nor a model.
        NotPublishedError: The model has no download location.
        UnsafePathError: The file name would leave the cache folder.
        DownloadError: The transfer failed; nothing is left in the cache.
        ChecksumError: Hash or size mismatch; nothing is left in the cache.
    """
    if '://' in name_or_url:
        url, entry = name_or_url, entry_for_url(name_or_url, index)
        file_name = url_file_name(url)
    else:
        entry = get_model_entry(name_or_url, index)
        url, file_name = resolve_url(entry, base_url), entry.file_name
    return fetch_to_cache(url, file_name,
                          sha256=entry.sha256 if entry else None,
                          size=entry.size if entry else None,
                          dir=dir, progress=progress, timeout=timeout,
                          deadline=deadline, max_bytes=max_bytes)


def resolve_checkpoint(path_or_name: str,
                       index: Optional[PathLike] = None) -> str:
    """A local checkpoint file for a path or a model-zoo name.

    An existing file is returned as it is; otherwise a name from the model
    index is fetched (cached and verified, see :func:`download_checkpoint`).

    Args:
        path_or_name (str): A checkpoint file or a model name.
        index (str | PathLike, optional): Model index to read. Defaults to
            None, the package's ``model-index.yml``.

    Returns:
        str: Path of a local file.

    Raises:
        FileNotFoundError: Neither a file nor a model of the index.
    """
    if os.path.isfile(path_or_name):
        return path_or_name
    if '://' not in path_or_name and os.sep not in path_or_name:
        try:
            get_model_entry(path_or_name, index)
        except UnknownModelError:
            pass
        else:
            return download_checkpoint(path_or_name, index=index,
                                       progress=False)
    raise FileNotFoundError(
        f'{path_or_name!r} is neither a checkpoint file nor a model-zoo '
        'name; give an existing file or a name from `tools/model_zoo.py '
        'list`.')
