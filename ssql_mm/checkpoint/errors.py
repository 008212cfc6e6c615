"""Errors about checkpoint files: one type per condition.

Every message is one line that names the file and the fix, so tools print it
as it is (:func:`report_errors`) instead of a traceback.
"""
import os
import select
import sys
from contextlib import contextmanager
from typing import Iterator, Tuple, Type

__all__ = [
    'CheckpointError', 'CheckpointNotFoundError', 'CorruptCheckpointError',
    'UnsafeCheckpointError', 'CheckpointMismatchError',
    'PretrainedMismatchError', 'CheckpointWriteError', 'UnsafePathError',
    'DownloadError', 'ChecksumError', 'DownloadTimeoutError',
    'report_errors', 'CLOSED_STDOUT_STATUS'
]

# The status of a command killed by SIGPIPE (128 + 13), as the shell reports
# ``seq 100000 | head -1``.
CLOSED_STDOUT_STATUS = 141


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


def _stdout_closed() -> bool:
    """Whether standard output is a pipe or socket nobody reads any more.

    Tells a reader that went away (``| head -1``) apart from a broken pipe
    elsewhere (a socket, a worker), which stays an error.
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    if not hasattr(select, 'poll'):  # Windows: no way to ask
        return True
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP)
               for _, events in poller.poll(0))


@contextmanager
def report_errors(prog: str,
                  extra: Tuple[Type[BaseException], ...] = ()
                  ) -> Iterator[None]:
    """Turn known errors into one ``prog: error: message`` line and exit 1.

    A reader that closes standard output early (``tool | head -1``) ends the
    tool quietly with status :data:`CLOSED_STDOUT_STATUS` (141, as a command
    killed by SIGPIPE), without a traceback; the rest of its output is
    discarded. Standard output is flushed when the block ends, so the tool's
    output must be printed inside the block.

    Args:
        prog (str): Tool name printed before the message.
        extra (tuple[type]): More exception types to report this way (e.g.
            ``ValueError`` while a tool checks its arguments). Defaults to
            ().
    """
    try:
        yield
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except BrokenPipeError:
        if not _stdout_closed():
            raise
        # Python flushes stdout again at exit: let that go to /dev/null
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        raise SystemExit(CLOSED_STDOUT_STATUS) from None
    except (CheckpointError, ) + tuple(extra) as err:
        # str(KeyError('x')) is "'x'": report the message, not its repr
        text = err.args[0] if isinstance(err, KeyError) and err.args else err
        message = ' '.join(str(text).split()) or type(err).__name__
        print(f'{prog}: error: {message}', file=sys.stderr)
        raise SystemExit(1) from None
