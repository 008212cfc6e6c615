"""Errors of the model zoo's name resolution.

Fetching errors (:class:`DownloadError`, :class:`ChecksumError`, ...) belong
to the checkpoint files and live in :mod:`ssql_mm.checkpoint.errors`; every
one of these is a :class:`~ssql_mm.checkpoint.CheckpointError`, which the
tools report as one line.
"""
from ssql_mm.checkpoint.errors import CheckpointError

__all__ = [
    'ModelZooError', 'UnknownModelError', 'NotPublishedError',
    'ModelIndexError'
]


class ModelZooError(CheckpointError):
    """Base class of the model zoo errors: no checkpoint for that name."""


class UnknownModelError(ModelZooError):
    """No model of that name is in the model index."""


class NotPublishedError(ModelZooError):
    """The model is listed but its checkpoint has no download location."""


class ModelIndexError(ModelZooError, ValueError):
    """A model index or metafile is not valid YAML or not in the format:
    the message names the file, the entry and the fix."""
