"""tools/train.py and tools/dist_train.sh on the committed real CIFAR subset."""
import glob
import json
import math
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.config import Config

from ssql_mm.checkpoint import safe_load
from ssql_mm.engine import check_data_roots

DEMO = 'configs/demo/ssql-simsiam_resnet18-w16_cpu-demo_cifar10-subset.py'
# 16 images, batch 8: 2 iterations an epoch, 3 epochs.
TINY = [
    'train_dataloader.dataset.indices=16', 'train_dataloader.batch_size=8',
    'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
    'train_cfg.max_epochs=3', 'default_hooks.logger.interval=1',
    'randomness.seed=3'
]


def run(cmd, cwd, env=None, timeout=600):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def train(repo_root, work_dir, *extra):
    return run([sys.executable, 'tools/train.py', DEMO, '--work-dir', str(work_dir),
                *extra, '--cfg-options', *TINY], cwd=repo_root)


def logged_iters(work_dir):
    """Per training iteration, the scalars the logger wrote."""
    records = {}
    for path in glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')):
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if 'w_bit' in record:
                    records[record['iter']] = record
    return records


def assert_same_weights(work_dir, other_dir, name='epoch_3.pth'):
    """The checkpoints ``name`` of two runs hold bit-identical state dicts."""
    ours = safe_load(osp.join(work_dir, name))['state_dict']
    theirs = safe_load(osp.join(other_dir, name))['state_dict']
    assert sorted(ours) == sorted(theirs)
    differ = [k for k in ours if not torch.equal(ours[k], theirs[k])]
    assert not differ, f'{len(differ)} tensors differ, e.g. {differ[:3]}'


@pytest.fixture(scope='module')
def uninterrupted(repo_root, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('uninterrupted')
    train(repo_root, work_dir)
    return work_dir


@pytest.mark.slow
def test_demo_logs_both_losses_and_varying_bits(uninterrupted):
    records = logged_iters(uninterrupted)
    assert sorted(records) == list(range(1, 7))
    for r in records.values():
        assert math.isfinite(r['loss_fp']) and math.isfinite(r['loss_q'])
        assert 2 <= r['w_bit'] <= 8 and 4 <= r['a_bit'] <= 8
    assert len({(r['w_bit'], r['a_bit']) for r in records.values()}) > 1
    for epoch in (1, 2, 3):
        assert osp.isfile(osp.join(uninterrupted, f'epoch_{epoch}.pth'))


@pytest.mark.slow
def test_resume_continues_bits_and_weights_exactly(repo_root, uninterrupted,
                                                   tmp_path):
    train(repo_root, tmp_path, '--resume', osp.join(uninterrupted, 'epoch_1.pth'))
    resumed = logged_iters(tmp_path)
    full = logged_iters(uninterrupted)
    assert sorted(resumed) == [3, 4, 5, 6]
    assert [(resumed[i]['w_bit'], resumed[i]['a_bit']) for i in resumed] == \
        [(full[i]['w_bit'], full[i]['a_bit']) for i in resumed]
    assert_same_weights(tmp_path, uninterrupted)


KILLER = '''
import os, signal
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class KillHook(Hook):
    """SIGKILL the process after iteration ``at_iter`` (1-based)."""
    priority = 'LOWEST'

    def __init__(self, at_iter):
        self.at_iter = at_iter

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.at_iter:
            os.kill(os.getpid(), signal.SIGKILL)
'''


@pytest.mark.slow
def test_kill9_and_resume_with_persistent_workers_ends_as_uninterrupted(
        repo_root, uninterrupted, tmp_path):
    """Killed in epoch 2 (after its first iteration), resumed from the
    epoch-1 checkpoint, with 2 persistent workers: the weights of the
    uninterrupted run, which loaded its data without workers."""
    (tmp_path / 'killer.py').write_text(KILLER)
    config = tmp_path / 'killed_cfg.py'
    config.write_text(textwrap.dedent(f'''
        _base_ = {osp.join(repo_root, DEMO)!r}
        custom_imports = dict(imports=['ssql_mm', 'killer'],
                              allow_failed_imports=False)
        custom_hooks = [
            dict(type='QuantHook', w_bits_range=(2, 8), a_bits_range=(4, 8)),
            dict(type='KillHook', at_iter=3),
        ]
    '''))
    work_dir = tmp_path / 'work'
    workers = ['train_dataloader.num_workers=2',
               'train_dataloader.persistent_workers=True']
    killed = subprocess.run(
        [sys.executable, 'tools/train.py', str(config), '--work-dir',
         str(work_dir), '--cfg-options', *TINY, *workers], cwd=repo_root,
        env=dict(os.environ, PYTHONPATH=str(tmp_path)), capture_output=True,
        text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert not (work_dir / 'epoch_2.pth').exists()
    run([sys.executable, 'tools/train.py', DEMO, '--work-dir', str(work_dir),
         '--resume', '--cfg-options', *TINY, *workers], cwd=repo_root)
    assert_same_weights(work_dir, uninterrupted)


RECORDER = '''
import json, os
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS
from ssql_mm.quantization import get_bits


@HOOKS.register_module()
class BitRecorderHook(Hook):
    priority = 'LOW'

    def __init__(self, out_dir):
        self.out_dir, self.bits = out_dir, []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        model = runner.model.module
        self.bits.append(get_bits(model.backbone)['layer2.0.conv1'])

    def after_run(self, runner):
        path = os.path.join(self.out_dir, f'bits_rank{get_rank()}.json')
        with open(path, 'w') as f:
            json.dump(dict(bits=self.bits, wrapper=type(runner.model).__name__), f)
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def dist_train(repo_root, config, work_dir, *extra, pythonpath=''):
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()),
               PYTHONPATH=pythonpath, CUDA_VISIBLE_DEVICES='')
    run(['bash', 'tools/dist_train.sh', str(config), '2', '--work-dir',
         str(work_dir), *extra, '--cfg-options', *TINY], cwd=repo_root, env=env)


@pytest.fixture(scope='module')
def two_process_run(repo_root, tmp_path_factory):
    """A 2-process gloo run recording the bits each rank used."""
    tmp_path = tmp_path_factory.mktemp('two_process')
    (tmp_path / 'bit_recorder.py').write_text(RECORDER)
    config = tmp_path / 'dist_cfg.py'
    config.write_text(textwrap.dedent(f'''
        _base_ = {osp.join(repo_root, DEMO)!r}
        custom_imports = dict(imports=['ssql_mm', 'bit_recorder'],
                              allow_failed_imports=False)
        custom_hooks = [
            dict(type='QuantHook', w_bits_range=(2, 8), a_bits_range=(4, 8)),
            dict(type='BitRecorderHook', out_dir={str(tmp_path)!r}),
        ]
    '''))
    dist_train(repo_root, config, tmp_path / 'work', pythonpath=str(tmp_path))
    return tmp_path


@pytest.mark.slow
def test_two_process_gloo_training_uses_identical_bits(two_process_run):
    ranks = [json.loads((two_process_run / f'bits_rank{r}.json').read_text())
             for r in (0, 1)]
    assert ranks[0]['wrapper'] == 'CPUDistributedDataParallel'
    # 16 images over 2 ranks, batch 8: one iteration per epoch, 3 epochs
    assert len(ranks[0]['bits']) == 3
    assert ranks[0]['bits'] == ranks[1]['bits']


@pytest.mark.slow
def test_two_process_resume_ends_as_uninterrupted(repo_root, two_process_run,
                                                  tmp_path):
    full = two_process_run / 'work'
    dist_train(repo_root, DEMO, tmp_path, '--resume',
               str(full / 'epoch_1.pth'))
    assert_same_weights(tmp_path, full)


def test_missing_data_folder_fails_before_training(repo_root, tmp_path):
    cfg = Config.fromfile(osp.join(repo_root, DEMO))
    cfg.train_dataloader.dataset.data_root = str(tmp_path / 'no-such-folder')
    with pytest.raises(FileNotFoundError,
                       match='train_dataloader.dataset.data_root'):
        check_data_roots(cfg)
    result = subprocess.run(
        [sys.executable, 'tools/train.py', DEMO, '--work-dir', str(tmp_path / 'w'),
         '--cfg-options', f'train_dataloader.dataset.data_root={tmp_path}/none'],
        cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert 'does not exist' in result.stderr
    assert not glob.glob(str(tmp_path / 'w' / '*.pth'))
