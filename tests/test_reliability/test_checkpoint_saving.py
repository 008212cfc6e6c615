"""Saving checkpoints: a crash at any moment keeps a whole checkpoint and a
valid ``last_checkpoint`` (issue cases 2, 3 and 7)."""
import errno
import os
import os.path as osp
import signal
import subprocess
import sys

import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import find_latest_checkpoint, save_checkpoint

from ssql_mm.checkpoint import (CheckpointNotFoundError, CheckpointWriteError,
                                CorruptCheckpointError, read_last_checkpoint,
                                safe_load)
from toy_runner import make_runner

TOY = osp.join(osp.dirname(osp.abspath(__file__)), 'toy_runner.py')


@pytest.fixture(autouse=True)
def mmengine_scope():
    """Runners set a global default scope; give the previous one back."""
    with DefaultScope.overwrite_default_scope('mmengine'):
        yield


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory) -> dict:
    """Final weights of a run of 4 iterations that nothing interrupts."""
    work_dir = tmp_path_factory.mktemp('straight')
    make_runner(str(work_dir), 4).train()
    return safe_load(work_dir / 'iter_4.pth')['state_dict']


def _fail_on_rename(monkeypatch, name: str, nth: int = 1) -> None:
    """Raise when ``name`` is renamed into place for the ``nth`` time."""
    replace, seen = os.replace, []

    def failing(src, dst, *args, **kwargs):
        if osp.basename(dst) == name:
            seen.append(dst)
            if len(seen) == nth:
                raise KeyboardInterrupt(f'crash while saving {name}')
        return replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, 'replace', failing)


def _resume_and_compare(work_dir, uninterrupted) -> None:
    make_runner(str(work_dir), 4, resume=True).train()
    final = safe_load(work_dir / 'iter_4.pth')['state_dict']
    for key, value in uninterrupted.items():
        assert torch.equal(final[key], value), key


def _pointer(work_dir) -> str:
    with open(work_dir / 'last_checkpoint') as f:
        return f.read()


def test_crash_while_writing_the_pointer(tmp_path, monkeypatch,
                                         uninterrupted):
    _fail_on_rename(monkeypatch, 'last_checkpoint', nth=2)
    with pytest.raises(KeyboardInterrupt):
        make_runner(str(tmp_path), 4).train()
    monkeypatch.undo()
    # The pointer still names the previous, complete checkpoint.
    assert _pointer(tmp_path) == str(tmp_path / 'iter_1.pth')
    assert find_latest_checkpoint(str(tmp_path)) == str(tmp_path /
                                                        'iter_1.pth')
    assert safe_load(tmp_path / 'iter_1.pth')['meta']['iter'] == 1
    _resume_and_compare(tmp_path, uninterrupted)


@pytest.mark.slow
def test_kill_during_the_pointer_write(tmp_path, uninterrupted):
    """A real SIGKILL with the pointer's temporary file complete."""
    done = subprocess.run(
        [sys.executable, TOY, str(tmp_path), '4', '0', '-1',
         'last_checkpoint:2'], capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert _pointer(tmp_path) == str(tmp_path / 'iter_1.pth')
    leftovers = [n for n in os.listdir(tmp_path) if n.endswith('.partial')]
    assert len(leftovers) == 1
    assert leftovers[0].startswith('.last_checkpoint.')
    # Resuming reproduces the straight run; the next write into the folder
    # removes the dead writer's temporary file.
    _resume_and_compare(tmp_path, uninterrupted)
    assert not any(n.endswith('.partial') for n in os.listdir(tmp_path))
    assert _pointer(tmp_path) == str(tmp_path / 'iter_4.pth')


@pytest.mark.parametrize('crash_at', ['iter_2.pth', 'last_checkpoint'])
def test_keep_one_loses_nothing_in_a_crash(tmp_path, monkeypatch,
                                           uninterrupted, crash_at):
    runner = make_runner(str(tmp_path), 4, max_keep=1)
    _fail_on_rename(monkeypatch, crash_at, nth=2 if crash_at ==
                    'last_checkpoint' else 1)
    with pytest.raises(KeyboardInterrupt):
        runner.train()
    monkeypatch.undo()
    # MMEngine would have deleted iter_1.pth before writing iter_2.pth.
    assert osp.isfile(tmp_path / 'iter_1.pth')
    assert read_last_checkpoint(tmp_path) == str(tmp_path / 'iter_1.pth')
    runner = make_runner(str(tmp_path), 4, resume=True, max_keep=1)
    runner.train()
    final = safe_load(tmp_path / 'iter_4.pth')['state_dict']
    for key, value in uninterrupted.items():
        assert torch.equal(final[key], value), key
    # The rotation still keeps exactly one checkpoint once saves complete.
    kept = sorted(n for n in os.listdir(tmp_path) if n.endswith('.pth'))
    assert kept == ['iter_4.pth']
    assert _pointer(tmp_path) == str(tmp_path / 'iter_4.pth')


def test_rotation_keeps_n_after_complete_saves(tmp_path):
    make_runner(str(tmp_path), 4, max_keep=2).train()
    kept = sorted(n for n in os.listdir(tmp_path) if n.endswith('.pth'))
    assert kept == ['iter_3.pth', 'iter_4.pth']


@pytest.mark.parametrize('umask', [0o022, 0o027])
def test_checkpoints_get_the_usual_file_mode(tmp_path, umask):
    old = os.umask(umask)
    try:
        save_checkpoint({'w': torch.ones(2)}, str(tmp_path / 'c.pth'))
        with open(tmp_path / 'plain', 'w'):
            pass
    finally:
        os.umask(old)
    mode = os.stat(tmp_path / 'c.pth').st_mode & 0o777
    assert mode == os.stat(tmp_path / 'plain').st_mode & 0o777
    assert mode == 0o666 & ~umask


def test_disk_full_names_the_path_and_keeps_the_old_file(tmp_path,
                                                         monkeypatch):
    path = tmp_path / 'ckpt.pth'
    save_checkpoint({'v': 1}, str(path))
    before = path.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(os, 'fsync', full)
    with pytest.raises(CheckpointWriteError) as err:
        save_checkpoint({'v': 2}, str(path))
    message = str(err.value)
    assert str(path) in message and 'free some space' in message
    assert err.value.errno == errno.ENOSPC and '\n' not in message
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ['ckpt.pth']


def test_broken_pointers_are_named(tmp_path):
    assert read_last_checkpoint(tmp_path) is None
    (tmp_path / 'last_checkpoint').write_text('')
    with pytest.raises(CorruptCheckpointError, match='last_checkpoint.*empty'
                       r'.*--resume PATH'):
        read_last_checkpoint(tmp_path)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'gone.pth'))
    with pytest.raises(CheckpointNotFoundError, match='gone.pth'):
        read_last_checkpoint(tmp_path)
