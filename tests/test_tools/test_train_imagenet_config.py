"""configs/ssql_r50.py starts training when pointed at an ImageNet folder."""
import glob
import os.path as osp
import shutil
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_ssql_r50_trains_one_iteration_on_an_imagenet_folder(repo_root, cifar_subset, tmp_path):
    # mmpretrain's ImageNet layout (meta/train.txt, train/<wnid>/*.JPEG),
    # filled with real images.
    lines = []
    for i, cls in enumerate(('airplane', 'cat')):
        folder = tmp_path / 'imagenet' / 'train' / f'n0000000{i}'
        folder.mkdir(parents=True)
        for src in sorted(glob.glob(osp.join(cifar_subset, 'train', cls, '*.jpg')))[:2]:
            name = osp.basename(src)[:-4] + '.JPEG'
            shutil.copy(src, folder / name)
            lines.append(f'n0000000{i}/{name} {i}')
    (tmp_path / 'imagenet' / 'meta').mkdir()
    (tmp_path / 'imagenet' / 'meta' / 'train.txt').write_text('\n'.join(lines) + '\n')
    result = subprocess.run(
        [sys.executable, 'tools/train.py', 'configs/ssql_r50.py',
         '--work-dir', str(tmp_path / 'work'), '--cfg-options',
         f'train_dataloader.dataset.data_root={tmp_path}/imagenet',
         'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
         'train_dataloader.persistent_workers=False',
         'train_dataloader.dataset.pipeline.1.transforms.0.0.scale=64',
         'train_cfg.max_epochs=1', 'default_hooks.logger.interval=1'],
        cwd=repo_root, capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert 'Epoch(train) [1][2/2]' in log
    assert 'loss_fp' in log and 'loss_q' in log and 'w_bit' in log
    assert osp.isfile(tmp_path / 'work' / 'epoch_1.pth')
