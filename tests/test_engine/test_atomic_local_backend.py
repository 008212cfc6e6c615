"""Checkpoints are written atomically: an interrupted save leaves nothing."""
import os

import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.runner.checkpoint import save_checkpoint

import ssql_mm  # noqa: F401  (registers the backend)
from ssql_mm.engine import AtomicLocalBackend


def test_mmengine_uses_the_atomic_backend(tmp_path):
    assert isinstance(get_file_backend(str(tmp_path / 'x.pth')), AtomicLocalBackend)
    path = tmp_path / 'sub' / 'ckpt.pth'
    save_checkpoint({'state_dict': {'w': torch.ones(3)}}, str(path))
    assert torch.equal(torch.load(path)['state_dict']['w'], torch.ones(3))
    assert os.listdir(path.parent) == ['ckpt.pth']


def test_interrupted_write_keeps_the_old_file_and_no_partial(tmp_path, monkeypatch):
    path = tmp_path / 'ckpt.pth'
    save_checkpoint({'v': 1}, str(path))
    before = path.read_bytes()

    def fail_fsync(fd):
        raise KeyboardInterrupt('interrupted while saving')

    monkeypatch.setattr(os, 'fsync', fail_fsync)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({'v': 2, 'big': torch.zeros(10000)}, str(path))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ['ckpt.pth']
