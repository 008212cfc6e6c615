"""The changes ``ssql_mm`` makes to MMEngine 0.10.7, one function each.

Each function is idempotent and documented with what a downstream user (an
mmdet or mmseg config with ``custom_imports=['ssql_mm']``) gets from it.
They are applied by :func:`ssql_mm.compat.apply_patches`.
"""
import os.path as osp
from typing import Any, Optional

from mmengine.dist import barrier, get_dist_info, is_main_process
from mmengine.fileio import register_backend
from mmengine.hooks import CheckpointHook
from mmengine.runner import CheckpointLoader
from mmengine.runner.checkpoint import load_from_http

from ssql_mm.apis.download import download_checkpoint, is_zoo_url
from ssql_mm.checkpoint import atomic_write_bytes, safe_load
from ssql_mm.engine.atomic_local_backend import AtomicLocalBackend

__all__ = [
    'patch_local_backend', 'patch_checkpoint_loaders',
    'patch_checkpoint_hook', 'load_from_local_safe', 'load_from_http_safe'
]


def patch_local_backend() -> None:
    """Local file writes through MMEngine become atomic.

    Registers :class:`~ssql_mm.engine.AtomicLocalBackend` for local paths:
    ``put``/``put_text`` (checkpoints, dumped configs) write a temporary
    file and rename it, so a crash leaves the old file or the new one, never
    a truncated one. Reading is unchanged.
    """
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')


def load_from_local_safe(filename: str, map_location: Any = None) -> Any:
    """MMEngine loader for local paths: :func:`ssql_mm.checkpoint.safe_load`.

    Args:
        filename (str): Path, ``~`` expanded.
        map_location (Any): As in ``torch.load``. Defaults to None.

    Returns:
        Any: The loaded checkpoint.
    """
    return safe_load(osp.expanduser(filename), map_location=map_location)


def load_from_http_safe(filename: str,
                        map_location: Any = None,
                        model_dir: Optional[str] = None) -> Any:
    """MMEngine loader for ``http(s)://``: model-zoo URLs are cached, hash
    checked and safely loaded; any other URL goes to MMEngine's own loader.

    Args:
        filename (str): The URL.
        map_location (Any): As in ``torch.load``. Defaults to None.
        model_dir (str, optional): MMEngine's download folder for URLs that
            are not ours. Defaults to None.

    Returns:
        Any: The loaded checkpoint.
    """
    if not is_zoo_url(filename):
        return load_from_http(filename, map_location, model_dir)
    rank, world_size = get_dist_info()
    if rank == 0:
        path = download_checkpoint(filename)
    if world_size > 1:
        barrier()
        if rank > 0:
            path = download_checkpoint(filename)
    return safe_load(path, map_location=map_location)


def patch_checkpoint_loaders() -> None:
    """``load_from``, ``resume`` and ``init_cfg=dict(type='Pretrained')``
    load without running code from the file.

    Local paths go through :func:`ssql_mm.checkpoint.safe_load`
    (``weights_only`` plus the numpy/``HistoryBuffer`` types MMEngine
    checkpoints need; damaged files are named as such). ``http(s)`` URLs of
    the ssql_mm model zoo (or under ``$SSQL_MM_BASE_URL``) are fetched into
    ``$SSQL_MM_HOME`` and hash-checked; other URLs keep MMEngine's loader
    (torch's ``weights_only`` default). MMEngine logs the local backend as
    ``local_safe``.
    """
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local_safe, force=True)
    CheckpointLoader.register_scheme(
        prefixes=('http://', 'https://'), loader=load_from_http_safe,
        force=True)


def _save_checkpoint_with_step(self: CheckpointHook, runner, step: int,
                               meta: dict) -> None:
    """``CheckpointHook._save_checkpoint_with_step``, crash-safe.

    MMEngine 0.10.7 removes the oldest kept checkpoint before writing the
    new one and writes ``last_checkpoint`` with a plain ``open``: a crash in
    between loses every checkpoint with ``max_keep_ckpts=1`` or leaves an
    empty pointer. Here the new checkpoint is written first, then the
    pointer (atomically), and only then is the oldest one removed.
    """
    stale = None
    if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids
                                        and self.keep_ckpt_ids[-1] == step):
        if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
            stale = self.keep_ckpt_ids.popleft()
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids',
                                       list(self.keep_ckpt_ids))

    ckpt_filename = self.filename_tmpl.format(step)
    self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
    runner.message_hub.update_info('last_ckpt', self.last_ckpt)
    runner.save_checkpoint(
        self.out_dir,
        ckpt_filename,
        self.file_client_args,
        save_optimizer=self.save_optimizer,
        save_param_scheduler=self.save_param_scheduler,
        meta=meta,
        by_epoch=self.by_epoch,
        backend_args=self.backend_args,
        **self.args)
    if not is_main_process():
        return
    atomic_write_bytes(
        self.last_ckpt.encode('utf-8'),
        osp.join(runner.work_dir, 'last_checkpoint'))
    if stale is not None:
        path = self.file_backend.join_path(self.out_dir,
                                           self.filename_tmpl.format(stale))
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # DeepSpeed saves folders
            self.file_backend.rmtree(path)


def patch_checkpoint_hook() -> None:
    """``CheckpointHook`` keeps a checkpoint on disk through any crash.

    Replaces ``CheckpointHook._save_checkpoint_with_step`` with
    :func:`_save_checkpoint_with_step`: write the new checkpoint, then the
    ``last_checkpoint`` pointer by write-then-rename, then delete the
    checkpoint that falls out of ``max_keep_ckpts``. Same files as MMEngine
    once the save completes.
    """
    CheckpointHook._save_checkpoint_with_step = _save_checkpoint_with_step

