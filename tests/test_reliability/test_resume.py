"""Resume of an iteration-based run (the CPU reproduction configs: views
made batched by ``BatchViewPreprocessor`` from torch's global generator)
ends with the uninterrupted run's weights, bit for bit. The epoch-based demo,
kill -9 with persistent workers and two gloo ranks are tested in
``tests/test_tools/test_train_tool.py``."""
import os.path as osp
import subprocess
import sys

import pytest
import torch

from ssql_mm.checkpoint import safe_load

CONFIG = ('configs/ssql/'
          'ssql-simsiam_resnet18-w16_1xb128-coslr-2500it_cifar10.py')
# 16 images, batch 8, 6 iterations, a checkpoint every 2.
TINY = [
    'train_dataloader.dataset.data_root=data/cifar10_subset',
    'train_dataloader.dataset.indices=16', 'train_dataloader.batch_size=8',
    'train_cfg.max_iters=6', 'default_hooks.checkpoint.interval=2',
    'default_hooks.checkpoint.max_keep_ckpts=-1', 'randomness.seed=3'
]


def train(repo_root, work_dir, *extra):
    cache = osp.join(osp.dirname(work_dir), 'cache')  # decoded once
    done = subprocess.run(
        [sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(work_dir),
         *extra, '--cfg-options', *TINY,
         f'train_dataloader.dataset.cache_dir={cache}'],
        cwd=repo_root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.slow
def test_iteration_loop_resume_ends_as_uninterrupted(repo_root, tmp_path):
    full, resumed = tmp_path / 'full', tmp_path / 'resumed'
    train(repo_root, full)
    train(repo_root, resumed, '--resume', str(full / 'iter_2.pth'))
    ours = safe_load(osp.join(resumed, 'iter_6.pth'))['state_dict']
    theirs = safe_load(osp.join(full, 'iter_6.pth'))['state_dict']
    differ = [k for k in theirs if not torch.equal(ours[k], theirs[k])]
    assert not differ, f'{len(differ)} tensors differ, e.g. {differ[:3]}'
