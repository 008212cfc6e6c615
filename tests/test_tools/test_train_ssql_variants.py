"""SSQL-BYOL and SSQL-MoCo v2 trained with tools/train.py and
tools/dist_train.sh on the committed real CIFAR subset."""
import glob
import json
import math
import os
import os.path as osp
import shutil
import socket
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

CONFIGS = {
    'byol': 'configs/ssql/ssql-byol_resnet18-w16_1xb128-coslr-2500it_cifar10.py',
    'mocov2': 'configs/ssql/ssql-mocov2_resnet18-w16_1xb128-coslr-2500it_cifar10.py',
}
FLOAT_TYPES = {'byol': 'BYOL', 'mocov2': 'MoCo'}
ITERS = 4
TINY = [
    'train_dataloader.dataset.data_root=data/cifar10_subset',
    'train_dataloader.dataset.cache_dir=None',
    'train_dataloader.dataset.indices=64', 'train_dataloader.batch_size=8',
    f'train_cfg.max_iters={ITERS}', 'default_hooks.logger.interval=1',
    f'default_hooks.checkpoint.interval={ITERS}', 'randomness.seed=3',
]


def run(cmd, cwd, env=None, timeout=600):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


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
def sweep_data(tmp_path_factory):
    """3 classes of real CIFAR-10 images: 8 train and 4 test per class."""
    root = tmp_path_factory.mktemp('images')
    subset = osp.join(osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))), 'data', 'cifar10_subset')
    for split, count in (('train', 8), ('test', 4)):
        for name in ('airplane', 'cat', 'ship'):
            (root / split / name).mkdir(parents=True)
            for file in sorted(os.listdir(osp.join(subset, split, name)))[:count]:
                shutil.copy(osp.join(subset, split, name, file),
                            root / split / name / file)
    return str(root)


@pytest.mark.slow
@pytest.mark.parametrize('algo', sorted(CONFIGS))
def test_train_logs_both_losses_and_the_checkpoint_is_the_float_algorithms(
        algo, repo_root, tmp_path, sweep_data):
    work_dir = tmp_path / 'work'
    run([sys.executable, 'tools/train.py', CONFIGS[algo], '--work-dir',
         str(work_dir), '--cfg-options', *TINY], cwd=repo_root)
    records = logged_iters(work_dir)
    assert sorted(records) == list(range(1, ITERS + 1))
    for r in records.values():
        assert math.isfinite(r['loss_fp']) and math.isfinite(r['loss_q'])
        assert 2 <= r['w_bit'] <= 8 and 4 <= r['a_bit'] <= 8
    assert len({(r['w_bit'], r['a_bit']) for r in records.values()}) > 1

    # The checkpoint loads strictly into mmpretrain's float algorithm ...
    ckpt = osp.join(work_dir, f'iter_{ITERS}.pth')
    model_cfg = Config.fromfile(osp.join(repo_root, CONFIGS[algo])).model
    model_cfg.pop('quant_cfg')
    model_cfg.type = FLOAT_TYPES[algo]
    state = torch.load(ckpt, map_location='cpu', weights_only=False)
    MODELS.build(model_cfg).load_state_dict(state['state_dict'], strict=True)
    # ... and evaluates at several bit-widths with tools/bit_sweep.py.
    out = tmp_path / 'sweep'
    run([sys.executable, 'tools/bit_sweep.py', ckpt, '--data', sweep_data,
         '--bits', 'fp', '4/4', '--knn', '--k', '3', '--batch-size', '8',
         '--calib-batches', '1', '--out', str(out)], cwd=repo_root)
    assert glob.glob(str(out / '*'))


RECORDER = '''
import json, os
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS
from ssql_mm.quantization import get_bits


@HOOKS.register_module()
class QueueRecorderHook(Hook):
    priority = 'LOW'

    def __init__(self, out_dir):
        self.out_dir, self.steps = out_dir, []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        model = runner.model.module
        self.steps.append(dict(bits=get_bits(model.backbone)['layer2.0.conv1'],
                               ptr=int(model.queue_ptr)))

    def after_run(self, runner):
        rank = get_rank()
        torch.save(runner.model.module.queue,
                   os.path.join(self.out_dir, f'queue_rank{rank}.pth'))
        with open(os.path.join(self.out_dir, f'steps_rank{rank}.json'), 'w') as f:
            json.dump(dict(steps=self.steps,
                           wrapper=type(runner.model).__name__), f)
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_gloo_mocov2_keeps_bits_and_queues_identical(repo_root,
                                                                  tmp_path):
    (tmp_path / 'queue_recorder.py').write_text(RECORDER)
    config = tmp_path / 'dist_cfg.py'
    config.write_text(textwrap.dedent(f'''
        _base_ = {osp.join(repo_root, CONFIGS['mocov2'])!r}
        custom_imports = dict(imports=['ssql_mm', 'queue_recorder'],
                              allow_failed_imports=False)
        custom_hooks = [
            dict(type='QuantHook', w_bits_range=(2, 8), a_bits_range=(4, 8)),
            dict(type='QueueRecorderHook', out_dir={str(tmp_path)!r}),
        ]
    '''))
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()),
               PYTHONPATH=str(tmp_path), CUDA_VISIBLE_DEVICES='')
    run(['bash', 'tools/dist_train.sh', str(config), '2', '--work-dir',
         str(tmp_path / 'work'), '--cfg-options', *TINY], cwd=repo_root, env=env)
    ranks = [json.loads((tmp_path / f'steps_rank{r}.json').read_text())
             for r in (0, 1)]
    assert ranks[0]['wrapper'] == 'CPUDistributedDataParallel'
    assert len(ranks[0]['steps']) == ITERS
    assert ranks[0]['steps'] == ranks[1]['steps']
    # One batch of keys from each rank (2 x 8) enters the queue per step.
    assert [s['ptr'] for s in ranks[0]['steps']] == [16 * (i + 1)
                                                     for i in range(ITERS)]
    assert len({tuple(s['bits']) for s in ranks[0]['steps']}) > 1
    queues = [torch.load(tmp_path / f'queue_rank{r}.pth') for r in (0, 1)]
    assert torch.equal(queues[0], queues[1])
    filled = queues[0][:, :16 * ITERS]
    torch.testing.assert_close(filled.norm(dim=0), torch.ones(16 * ITERS))
    # Keys of the two ranks differ (each rank has its own images).
    assert not torch.allclose(filled[:, :8], filled[:, 8:16])
