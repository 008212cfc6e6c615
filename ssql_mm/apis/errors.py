"""Errors raised by the model zoo."""

__all__ = [
    'ModelZooError', 'UnknownModelError', 'NotPublishedError',
    'DownloadError', 'ChecksumError'
]


class ModelZooError(RuntimeError):
    """Base class of the model zoo errors."""


class UnknownModelError(ModelZooError):
    """No model of that name is in the model index."""


class NotPublishedError(ModelZooError):
    """The model is listed but its checkpoint has no download location."""


class DownloadError(ModelZooError):
    """A transfer failed (HTTP error, connection lost, incomplete body)."""


class ChecksumError(DownloadError):
    """The downloaded bytes are not the published checkpoint."""
