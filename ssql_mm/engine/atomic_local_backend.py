"""MMEngine's local file backend with atomic writes.

MMEngine writes checkpoints by opening the final path and writing into it;
an interrupted save leaves a truncated file that looks like a checkpoint.
:class:`AtomicLocalBackend` writes through
:func:`ssql_mm.checkpoint.atomic_write_bytes` (temporary file, fsync,
rename). ``ssql_mm.compat`` installs it for local paths; the
``last_checkpoint`` pointer, which MMEngine writes with a plain ``open``, is
covered by the ``CheckpointHook`` patch there.
"""
from pathlib import Path
from typing import Union

from mmengine.fileio.backends import LocalBackend

from ssql_mm.checkpoint import atomic_write_bytes

__all__ = ['AtomicLocalBackend']


class AtomicLocalBackend(LocalBackend):
    """MMEngine's local backend with atomic ``put`` and ``put_text``."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Write ``obj`` to ``filepath`` atomically.

        Args:
            obj (bytes): The content.
            filepath (str | Path): Destination; its folder is created.
        """
        atomic_write_bytes(obj, filepath)

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        """Write the text ``obj`` to ``filepath`` atomically.

        Args:
            obj (str): The content.
            filepath (str | Path): Destination; its folder is created.
            encoding (str): Text encoding. Defaults to 'utf-8'.
        """
        atomic_write_bytes(obj.encode(encoding), filepath)
