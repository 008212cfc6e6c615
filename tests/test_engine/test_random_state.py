"""The random streams of a training run: capture and restore, per-sample
seeds, and RandomStateHook on small in-process MMEngine runs whose every
step and sample draw from python's, NumPy's and torch's generators."""
import itertools
import random

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from torch.utils.data import DataLoader, Dataset

from ssql_mm.checkpoint import safe_load
from ssql_mm.engine import (RandomStateHook, SeededSamples,
                            capture_random_state, restore_random_state)


def draw(model=None) -> list:
    """One number from each generator a step may use."""
    numbers = [random.random(), float(np.random.rand()), float(torch.rand(1))]
    if model is not None:
        numbers.append(float(torch.rand(1, generator=model.generator)))
    return numbers


class WithGenerator(nn.Module):

    def __init__(self, seed: int = 1) -> None:
        super().__init__()
        self.generator = torch.Generator().manual_seed(seed)


def test_restore_repeats_every_stream_also_through_a_checkpoint(tmp_path):
    model = nn.Sequential(WithGenerator())
    state = capture_random_state(model)
    first = draw(model[0])
    torch.save({'random_state': state}, tmp_path / 'state.pth')
    loaded = safe_load(tmp_path / 'state.pth')['random_state']
    draw(model[0])
    assert restore_random_state(loaded, model) == []
    assert draw(model[0]) == first
    assert set(state['generators']) == {'0.generator'}


def test_restore_names_generators_it_has_no_state_for():
    state = capture_random_state(nn.Linear(1, 1))
    assert restore_random_state(state, WithGenerator()) == ['generator']


class RandomItems(Dataset):
    """Items drawn from all three global generators, as pipelines do; for a
    runner as ``dict(inputs=...)``."""

    def __init__(self, as_dict: bool = False) -> None:
        self.as_dict = as_dict

    def __len__(self) -> int:
        return 12

    def __getitem__(self, index: int):
        item = torch.tensor([index, *draw()], dtype=torch.float64)
        return dict(inputs=item) if self.as_dict else item


def epochs(num_workers: int, persistent: bool, seed: int = 0) -> list:
    dataset = RandomItems()
    seeded = SeededSamples.install(dataset, seed)
    loader = DataLoader(dataset, batch_size=4, num_workers=num_workers,
                        persistent_workers=persistent)
    batches = []
    for epoch in range(2):
        seeded.set_epoch(epoch)
        batches.append(torch.cat(list(loader)))
    return batches


def test_samples_depend_on_seed_epoch_and_index_only():
    single = epochs(0, False)
    assert all(torch.equal(a, b)
               for a, b in zip(single, epochs(2, True)))
    assert not torch.equal(single[0][:, 1:], single[1][:, 1:])
    assert not torch.equal(single[0], epochs(0, False, seed=1)[0])


def test_samples_leave_the_callers_streams_alone():
    dataset = RandomItems()
    seeded = SeededSamples.install(dataset, 0)
    state = capture_random_state()
    seeded([0, 1, 2])
    after = draw()
    restore_random_state(state)
    assert draw() == after


class NoisyModel(BaseModel):
    """A step that draws from every global generator."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 1)

    def forward(self, inputs, mode='loss'):
        noise = torch.rand(len(inputs), 1) + random.random()
        out = self.fc(inputs.float()[:, 1:]) * (noise + np.random.rand())
        if mode == 'loss':
            return {'loss': out.pow(2).mean()}
        return list(out)


class DrawingMetric(BaseMetric):
    """Validation that draws random numbers too."""
    default_prefix = 'toy'

    def process(self, data_batch, data_samples) -> None:
        self.results.append(draw()[0])

    def compute_metrics(self, results) -> dict:
        return {'x': 0.0}


@pytest.fixture(autouse=True)
def mmengine_scope():
    """Runners set a global default scope; give the previous one back."""
    with DefaultScope.overwrite_default_scope('mmengine'):
        yield


_RUNS = itertools.count()


def make_runner(work_dir, by_epoch=True, resume=False, load_from=None,
                val=False, hook=True, val_every=1, workers=0) -> Runner:
    torch.manual_seed(0)  # the model's initial weights
    loader = dict(dataset=RandomItems(as_dict=True), batch_size=4,
                  num_workers=0,
                  sampler=dict(type='DefaultSampler', shuffle=True),
                  collate_fn=dict(type='default_collate'))
    # MMEngine pauses 2 s each time an iteration loop restarts a finite
    # sampler: iteration loops train from an infinite one.
    train_loader = dict(
        loader, num_workers=workers, persistent_workers=workers > 0,
        sampler=dict(type='DefaultSampler' if by_epoch else 'InfiniteSampler',
                     shuffle=True))
    if by_epoch:
        train_cfg = dict(by_epoch=True, max_epochs=3, val_interval=val_every)
    else:
        train_cfg = dict(by_epoch=False, max_iters=9,
                         val_interval=3 * val_every)
    return Runner(
        model=NoisyModel(),
        work_dir=str(work_dir),
        train_dataloader=train_loader,
        val_dataloader=loader if val else None,
        val_cfg=dict() if val else None,
        val_evaluator=[DrawingMetric()] if val else None,
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=train_cfg,
        default_hooks=dict(checkpoint=dict(
            type='CheckpointHook', by_epoch=by_epoch,
            interval=1 if by_epoch else 3)),
        custom_hooks=[RandomStateHook()] if hook else None,
        resume=resume,
        load_from=load_from,
        default_scope='mmengine',
        randomness=dict(seed=0),
        experiment_name=f'random-state-test-{next(_RUNS)}',
        log_level='WARNING')


def train(runner: Runner) -> None:
    runner.train()
    iterator = getattr(runner.train_dataloader, '_iterator', None)
    if iterator is not None:
        # Persistent workers: stopped by garbage collection they would take
        # 5 s each to give up.
        iterator._shutdown_workers()


def weights(path) -> dict:
    return safe_load(path)['state_dict']


def same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def resumed(tmp_path, checkpoint, **kwargs):
    work_dir = tmp_path / 'resumed'
    train(make_runner(work_dir, resume=True, load_from=str(checkpoint),
                      **kwargs))
    return work_dir


@pytest.mark.parametrize('by_epoch,workers,first,last',
                         [(True, 0, 'epoch_1.pth', 'epoch_3.pth'),
                          (True, 2, 'epoch_1.pth', 'epoch_3.pth'),
                          (False, 0, 'iter_3.pth', 'iter_9.pth'),
                          (False, 2, 'iter_3.pth', 'iter_9.pth')])
def test_resume_ends_with_the_uninterrupted_weights(tmp_path, by_epoch,
                                                    workers, first, last):
    """Also with persistent workers, which the uninterrupted run starts once
    and the resumed one again."""
    full = tmp_path / 'full'
    train(make_runner(full, by_epoch=by_epoch, val=True, workers=workers))
    again = resumed(tmp_path, full / first, by_epoch=by_epoch, val=True,
                    workers=workers)
    assert same(weights(full / last), weights(again / last))


def test_without_the_hook_resume_differs(tmp_path):
    """The runs above draw random numbers that matter."""
    full = tmp_path / 'full'
    train(make_runner(full, hook=False))
    again = resumed(tmp_path, full / 'epoch_1.pth', hook=False)
    assert not same(weights(full / 'epoch_3.pth'),
                    weights(again / 'epoch_3.pth'))


@pytest.mark.parametrize('by_epoch,last', [(True, 'epoch_3.pth'),
                                           (False, 'iter_9.pth')])
def test_validation_leaves_the_training_streams_alone(tmp_path, by_epoch,
                                                      last):
    """Validating after every epoch or never (in these 3) trains alike."""
    for name, every in (('often', 1), ('never', 9)):
        train(make_runner(tmp_path / name, by_epoch=by_epoch, val=True,
                          val_every=every))
    assert same(weights(tmp_path / 'often' / last),
                weights(tmp_path / 'never' / last))


def test_load_from_starts_fresh_streams(tmp_path):
    """Fine-tuning from a checkpoint (not resuming) ignores its state."""
    train(make_runner(tmp_path / 'full'))
    checkpoint = torch.load(tmp_path / 'full' / 'epoch_1.pth',
                            weights_only=False)
    del checkpoint['random_state']
    torch.save(checkpoint, tmp_path / 'stateless.pth')
    for name, path in (('a', tmp_path / 'full' / 'epoch_1.pth'),
                       ('b', tmp_path / 'stateless.pth')):
        train(make_runner(tmp_path / name, load_from=str(path)))
    assert same(weights(tmp_path / 'a' / 'epoch_3.pth'),
                weights(tmp_path / 'b' / 'epoch_3.pth'))


def test_resume_without_saved_state_warns(tmp_path, capsys):
    train(make_runner(tmp_path / 'full', hook=False))
    capsys.readouterr()
    resumed(tmp_path, tmp_path / 'full' / 'epoch_1.pth')
    assert 'RandomStateHook: the checkpoint holds no random state' in \
        capsys.readouterr().out


def test_other_rank_counts_and_mid_epoch_checkpoints_are_named(capsys):
    MMLogger.get_instance('random-state-test')  # the current logger
    saved = dict(ranks=[dict(iter=4), dict(iter=4)])
    assert RandomStateHook._saved_state(saved, 4) == dict(iter=4)
    assert 'saved by 2 rank(s), this run has 1' in capsys.readouterr().out
    assert RandomStateHook._saved_state(saved, 3) is None
    assert 'inside an epoch' in capsys.readouterr().out
