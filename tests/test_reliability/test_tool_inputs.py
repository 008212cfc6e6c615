"""Damaged or wrong inputs to the tools end in one line naming the file and
the fix, never in a traceback (issue 21, case 4): ``--resume`` of another
width, depth or a backbone, bad configs, a truncated ONNX model, NaN / inf
weights, a corrupt JPEG, a CUDA device the machine lacks."""
import os
import shutil
import subprocess
import sys

import pytest
import torch

import ssql_mm.evaluation.sweep
from reliability_utils import (REPO, error_line, run_tool, run_tool_process,
                               write_backbone_checkpoint)
from ssql_mm.deploy.qdq_export import export_qdq_model

DEMO = 'configs/demo/ssql-simsiam_resnet18-w16_cpu-demo_cifar10-subset.py'
TINY = ['train_dataloader.dataset.indices=16', 'train_dataloader.batch_size=8',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False', 'train_cfg.max_epochs=2']


@pytest.fixture(scope='module')
def run_checkpoint(tmp_path_factory) -> str:
    """A real checkpoint of the demo config after one tiny epoch."""
    work_dir = tmp_path_factory.mktemp('run')
    subprocess.run([sys.executable, 'tools/train.py', DEMO, '--work-dir',
                    str(work_dir), '--cfg-options', *TINY[:-1],
                    'train_cfg.max_epochs=1'], cwd=REPO, check=True,
                   capture_output=True, timeout=600)
    return str(work_dir / 'epoch_1.pth')


def _checkpoints(folder) -> list:
    return sorted(n for n in os.listdir(folder) if n.endswith('.pth'))


@pytest.mark.parametrize('kind,options,words', [
    ('width', ['model.backbone.base_channels=8',
               'model.backbone.stem_channels=8', 'model.neck.in_channels=64'],
     'same layers, other widths'),
    ('depth', ['model.backbone.depth=34'],
     'it is a ResNet-18 and this config a ResNet-34'),
    ('backbone', [], 'holds weights only'),
])
def test_resume_of_a_checkpoint_that_does_not_fit(
        tmp_path, monkeypatch, run_checkpoint, kind, options, words):
    resume = run_checkpoint
    if kind == 'backbone':
        resume = str(tmp_path / 'backbone.pth')
        assert run_tool(monkeypatch, 'tools/extract_backbone.py',
                        run_checkpoint, resume, '--format',
                        'mmpretrain') == 0
    work_dir = tmp_path / 'resumed'
    line = run_tool_process('tools/train.py', DEMO, '--work-dir', work_dir,
                            '--resume', resume, '--cfg-options', *TINY,
                            *options)
    assert resume in line and words in line
    assert "load_from=" in line  # the fix
    assert _checkpoints(work_dir) == []


@pytest.mark.parametrize('option,words', [
    ('model.backbone.depth=19', 'invalid depth 19'),
    ('model.quant_cfg.w_bits=(9,2)', 'w_bits must be an int'),
    ('custom_hooks.0.w_bits_range=(9,2)', 'w_bits_range=(9, 2) is empty'),
    ('model.backbone.type=NoSuchBackbone', 'NoSuchBackbone is not in the'),
    ('optim_wrapper.optimizer.lr=-1', 'Invalid learning rate'),
    ('train_dataloader.batch_size=0', 'batch_size should be a positive'),
])
def test_bad_config_is_one_line_without_traceback(tmp_path, option, words):
    line = run_tool_process('tools/train.py', DEMO, '--work-dir', tmp_path,
                            '--cfg-options', *TINY, option)
    assert words in line
    assert _checkpoints(tmp_path) == []


def test_eval_onnx_on_a_truncated_model(tmp_path, capsys, monkeypatch,
                                        cifar_subset):
    good = tmp_path / 'good.onnx'
    export_qdq_model(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)), str(good))
    cut = tmp_path / 'cut.onnx'
    cut.write_bytes(good.read_bytes()[:good.stat().st_size // 2])
    code = run_tool(monkeypatch, 'tools/deploy/eval_onnx.py', cut, '--data',
                    cifar_subset)
    assert code == 1
    line = error_line(capsys, 'eval_onnx')
    assert str(cut) in line and 'damaged or cut short' in line


@pytest.fixture
def nan_checkpoint(tmp_path) -> str:
    return write_backbone_checkpoint(tmp_path / 'nan.pth', non_finite=True)


def test_bit_sweep_refuses_non_finite_weights(tmp_path, capsys, monkeypatch,
                                              cifar_subset, nan_checkpoint):
    code = run_tool(monkeypatch, 'tools/bit_sweep.py', nan_checkpoint,
                    '--data', cifar_subset, '--bits', 'fp', '4/4', '--out',
                    tmp_path / 'sweep')
    assert code == 1
    line = error_line(capsys, 'bit_sweep')
    assert nan_checkpoint in line and 'not finite' in line
    assert 'backbone.layer2.0.conv1.weight (1 NaN, 0 inf)' in line
    assert not (tmp_path / 'sweep' / 'bit_sweep.json').exists()


def test_export_refuses_non_finite_weights(tmp_path, capsys, monkeypatch,
                                           nan_checkpoint):
    out = tmp_path / 'model.onnx'
    code = run_tool(monkeypatch, 'tools/deploy/export_onnx.py',
                    nan_checkpoint, '--bits', 'fp', '--out', out)
    assert code == 1
    line = error_line(capsys, 'export_onnx')
    assert nan_checkpoint in line and 'not finite' in line
    assert not out.exists()


def test_corrupt_jpeg_stops_the_sweep_and_is_named(tmp_path, capsys,
                                                   monkeypatch, cifar_subset):
    data = tmp_path / 'data'
    for split in ('train', 'test'):
        for name in ('airplane', 'cat'):
            folder = data / split / name
            folder.mkdir(parents=True)
            for image in sorted(os.listdir(os.path.join(
                    cifar_subset, split, name)))[:4]:
                shutil.copy(os.path.join(cifar_subset, split, name, image),
                            folder)
    damaged = data / 'test' / 'cat' / sorted(os.listdir(
        data / 'test' / 'cat'))[1]
    damaged.write_bytes(damaged.read_bytes()[:200])  # cut short
    checkpoint = write_backbone_checkpoint(tmp_path / 'ssl.pth')
    code = run_tool(monkeypatch, 'tools/bit_sweep.py', checkpoint, '--data',
                    data, '--bits', 'fp', '--k', '2', '--out',
                    tmp_path / 'sweep')
    assert code == 1
    line = error_line(capsys, 'bit_sweep')
    assert str(damaged) in line and 'cannot be decoded' in line


def test_device_the_machine_lacks_is_refused_before_work(
        tmp_path, capsys, monkeypatch, cifar_subset):
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    missing = f'cuda:{max(count, 7)}'

    def must_not_run(*args, **kwargs):
        raise AssertionError('images were read before the device check')

    monkeypatch.setattr(ssql_mm.evaluation.sweep, 'load_split', must_not_run)
    checkpoint = write_backbone_checkpoint(tmp_path / 'ssl.pth')
    code = run_tool(monkeypatch, 'tools/bit_sweep.py', checkpoint, '--data',
                    cifar_subset, '--bits', 'fp', '--device', missing,
                    '--out', tmp_path / 'sweep')
    assert code == 1
    line = error_line(capsys, 'bit_sweep')
    assert f'--device {missing}' in line and 'CUDA device' in line
