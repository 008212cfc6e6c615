"""tools/train.py and tools/dist_train.sh on the committed real CIFAR subset."""
import glob
import json
import math
import os
import os.path as osp
import socket
import subprocess
import sys
import textwrap

import pytest
from mmengine.config import Config

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
def test_resume_continues_the_bit_sequence(repo_root, uninterrupted, tmp_path):
    train(repo_root, tmp_path, '--resume', osp.join(uninterrupted, 'epoch_1.pth'))
    resumed = logged_iters(tmp_path)
    full = logged_iters(uninterrupted)
    assert sorted(resumed) == [3, 4, 5, 6]
    assert [(resumed[i]['w_bit'], resumed[i]['a_bit']) for i in resumed] == \
        [(full[i]['w_bit'], full[i]['a_bit']) for i in resumed]


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


@pytest.mark.slow
def test_two_process_gloo_training_uses_identical_bits(repo_root, tmp_path):
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
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()),
               PYTHONPATH=str(tmp_path), CUDA_VISIBLE_DEVICES='')
    run(['bash', 'tools/dist_train.sh', str(config), '2', '--work-dir',
         str(tmp_path / 'work'), '--cfg-options', *TINY], cwd=repo_root, env=env)
    ranks = [json.loads((tmp_path / f'bits_rank{r}.json').read_text()) for r in (0, 1)]
    assert ranks[0]['wrapper'] == 'CPUDistributedDataParallel'
    # 16 images over 2 ranks, batch 8: one iteration per epoch, 3 epochs
    assert len(ranks[0]['bits']) == 3
    assert ranks[0]['bits'] == ranks[1]['bits']


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
