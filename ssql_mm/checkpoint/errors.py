"""Errors about checkpoint files: one type per condition.

Every message is one line that names the file and the fix, so tools print it
as it is (:func:`report_errors`) instead of a traceback.
"""
import sys
from contextlib import contextmanager
from typing import Iterator, Tuple, Type

__all__ = [
    'CheckpointError', 'CheckpointNotFoundError', 'CorruptCheckpointError',
    'UnsafeCheckpointError', 'CheckpointMismatchError',
    'PretrainedMismatchError', 'CheckpointWriteError', 'UnsafePathError',
    'DownloadError', 'ChecksumError', 'DownloadTimeoutError', 'report_errors'
]


class CheckpointError(RuntimeError):
    """Base class: a checkpoint cannot be read, written or fetched."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint file does not exist."""


class CorruptCheckpointError(CheckpointError):
    """The file is empty, truncated or not a checkpoint at all.

    Nothing in it was run: damaged bytes are told apart from a well-formed
    file that asks for code (:class:`UnsafeCheckpointError`).
    """


class UnsafeCheckpointError(CheckpointError):
    """A well-formed checkpoint needs more than the safe allow-list permits.

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
            'permit; unpickling it could run code stored in the file. If, '
            'and only if, you trust where the file came from, load it with '
            'safe_load(path, trusted=True) (or --trust-checkpoint in '
            'tools/extract_backbone.py, tools/model_zoo.py publish and '
            'tools/model_converters) and keep the weights-only copy it '
            'writes; to permit one more harmless class, pass it in '
            'extra_globals=[...].')


class CheckpointMismatchError(CheckpointError, ValueError):
    """The file loads, but its keys do not fit what was asked (no state
    dict, no key under the prefix, keys without a counterpart in the target
    layout, another ResNet depth)."""


class PretrainedMismatchError(CheckpointMismatchError):
    """A ``Pretrained`` ``init_cfg`` checkpoint does not fill the backbone."""


class CheckpointWriteError(CheckpointError, OSError):
    """A checkpoint could not be written (disk full, no permission...); the
    previous file at that path, if any, is untouched."""


class UnsafePathError(CheckpointError, ValueError):
    """A file name from an index or a URL would land outside its folder."""


class DownloadError(CheckpointError):
    """A transfer failed (HTTP error, connection lost, incomplete body)."""


class ChecksumError(DownloadError):
    """The downloaded bytes are not the published checkpoint."""


class DownloadTimeoutError(DownloadError):
    """A transfer did not finish within its overall deadline."""


@contextmanager
def report_errors(prog: str,
                  extra: Tuple[Type[BaseException], ...] = ()
                  ) -> Iterator[None]:
    """Turn known errors into one ``prog: error: message`` line and exit 1.

    Args:
        prog (str): Tool name printed before the message.
        extra (tuple[type]): More exception types to report this way (e.g.
            ``ValueError`` while a tool checks its arguments). Defaults to
            ().
    """
    try:
        yield
    except (CheckpointError, ) + tuple(extra) as err:
        # str(KeyError('x')) is "'x'": report the message, not its repr
        text = err.args[0] if isinstance(err, KeyError) and err.args else err
        message = ' '.join(str(text).split()) or type(err).__name__
        print(f'{prog}: error: {message}', file=sys.stderr)
        raise SystemExit(1) from None
