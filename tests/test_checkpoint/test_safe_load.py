import os
import pickle

import pytest
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.registry import DefaultScope
from mmengine.runner import CheckpointLoader, Runner, load_checkpoint
from mmengine.runner.checkpoint import load_from_local
from torch.utils.data import Dataset

import ssql_mm  # noqa: F401  (registers the safe loader)
from ssql_mm.checkpoint import UnsafeCheckpointError, safe_load
from ssql_mm.compat import patch_checkpoint_loaders


class WritesMarker:
    """Unpickling this runs ``os.mkdir(marker)``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker, )


class LooksUpAttribute:
    """Unpickling this calls ``getattr(HistoryBuffer, '__init__')``."""

    def __reduce__(self):
        return getattr, (HistoryBuffer, '__init__')


class Harmless:
    """A plain custom class: not on the allow-list."""

    def __init__(self) -> None:
        self.value = 3


@pytest.mark.parametrize('writer,named', [('torch', True), ('pickle2', True),
                                          ('pickle4', False)])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, writer, named):
    marker = tmp_path / 'marker'
    path = tmp_path / 'evil.pth'
    payload = {'state_dict': {}, 'x': WritesMarker(str(marker))}
    if writer == 'torch':
        torch.save(payload, path)
    else:
        with open(path, 'wb') as f:
            pickle.dump(payload, f, protocol=int(writer[-1]))
    # protocol 4 framing is refused before the global is even read
    expected = 'mkdir' if named else 'does not accept'
    with pytest.raises(UnsafeCheckpointError, match=expected) as err:
        safe_load(path)
    assert 'trusted=True' in str(err.value)
    # MMEngine's own entry points go through the same loader
    with pytest.raises(UnsafeCheckpointError):
        CheckpointLoader.load_checkpoint(str(path))
    with pytest.raises(UnsafeCheckpointError):
        load_checkpoint(nn.Linear(1, 1), str(path))
    assert not marker.exists()


def test_getattr_is_limited_to_history_buffer_statistics(tmp_path):
    path = tmp_path / 'getattr.pth'
    torch.save({'x': LooksUpAttribute()}, path)
    with pytest.raises(UnsafeCheckpointError, match='__init__'):
        safe_load(path)
    buffer = HistoryBuffer()
    buffer.update(1.5)
    torch.save({'hub': buffer}, path)
    assert safe_load(path)['hub'].mean() == 1.5


def test_trusted_opt_in_and_extra_globals(tmp_path):
    path = tmp_path / 'custom.pth'
    torch.save({'obj': Harmless()}, path)
    with pytest.raises(UnsafeCheckpointError, match='Harmless'):
        safe_load(path)
    assert safe_load(path, trusted=True)['obj'].value == 3
    assert safe_load(path, extra_globals=[Harmless])['obj'].value == 3
    # the extra global was allowed for that one call only
    with pytest.raises(UnsafeCheckpointError):
        safe_load(path)


class ToyModel(BaseModel):

    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(2)
        self.fc = nn.Linear(2, 1)

    def forward(self, x, mode='loss'):
        return {'loss': self.fc(self.bn(x)).pow(2).mean()}


class ToyData(Dataset):

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> dict:
        return dict(x=torch.tensor([float(i), 1.0 - i]))


def _runner(work_dir, max_iters: int, resume: bool) -> Runner:
    torch.manual_seed(0)  # same initial weights in every run
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=ToyData(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=2,
            num_workers=0,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(
            optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        param_scheduler=dict(type='MultiStepLR', milestones=[3], begin=0,
                             end=4, by_epoch=False),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        resume=resume,
        default_scope='mmengine',
        randomness=dict(seed=0),
        log_level='WARNING')


@pytest.fixture
def restore_default_scope():
    """Runners set a global default scope; give the previous one back."""
    with DefaultScope.overwrite_default_scope('mmengine'):
        yield


def test_runner_resumes_after_import(tmp_path, restore_default_scope):
    _runner(tmp_path, max_iters=2, resume=False).train()
    ckpt = tmp_path / 'iter_2.pth'
    saved = safe_load(ckpt)
    assert isinstance(saved['message_hub']['log_scalars']['train/loss'],
                      HistoryBuffer)

    # Without ssql_mm's loader, torch's weights_only default refuses it.
    CheckpointLoader.register_scheme('', load_from_local, force=True)
    try:
        with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
            _runner(tmp_path, max_iters=4, resume=True).train()
    finally:
        patch_checkpoint_loaders()

    runner = _runner(tmp_path, max_iters=4, resume=True)
    runner.train()
    assert runner.iter == 4
    resumed = safe_load(tmp_path / 'iter_4.pth')
    # the loss history continued from the two iterations before resuming
    assert len(resumed['message_hub']['log_scalars']['train/loss']
               .data[0]) == 4
    assert resumed['optimizer']['param_groups'][0]['lr'] == pytest.approx(0.01)

    # and the result is that of an uninterrupted run
    _runner(tmp_path / 'straight', max_iters=4, resume=False).train()
    straight = safe_load(tmp_path / 'straight' / 'iter_4.pth')
    for key, value in straight['state_dict'].items():
        assert torch.allclose(resumed['state_dict'][key], value), key
