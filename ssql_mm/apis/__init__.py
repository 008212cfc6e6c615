"""Model zoo: list, download (cached and verified), build and publish."""
from ssql_mm.checkpoint import (ChecksumError, DownloadError,
                                DownloadTimeoutError, UnsafePathError,
                                cache_dir, fetch_file, sha256sum)
from .builder import get_model
from .download import download_checkpoint, resolve_checkpoint, resolve_url
from .errors import (ModelIndexError, ModelZooError, NotPublishedError,
                     UnknownModelError)
from .model_index import (ModelEntry, get_model_entry, list_models,
                          load_model_index)
from .publish import publish_checkpoint
from .table import (model_zoo_markdown, model_zoo_rows, model_zoo_table,
                    model_zoo_task_table)

__all__ = [
    'ChecksumError', 'DownloadError', 'DownloadTimeoutError', 'ModelEntry',
    'ModelIndexError', 'ModelZooError', 'UnsafePathError',
    'NotPublishedError', 'UnknownModelError', 'cache_dir',
    'download_checkpoint', 'fetch_file', 'get_model', 'get_model_entry',
    'list_models', 'load_model_index', 'model_zoo_rows', 'model_zoo_table',
    'model_zoo_task_table',
    'model_zoo_markdown', 'publish_checkpoint', 'resolve_checkpoint',
    'resolve_url', 'sha256sum'
]
