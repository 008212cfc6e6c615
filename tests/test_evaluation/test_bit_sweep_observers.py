"""bit_sweep --observer and --ptq: the choice reaches calibration and the
report."""
import json
import os
import os.path as osp
import runpy
import shutil
import sys

import pytest
import torch
from mmengine.config import Config
from mmpretrain.models.backbones import ResNet_CIFAR

import ssql_mm.models.pretrained as pretrained
from ssql_mm.quantization import MSEObserver, PercentileObserver

TINY = dict(type='ResNet_CIFAR', depth=18, stem_channels=4, base_channels=4)


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory, cifar_subset):
    """2 classes of real CIFAR-10 images: 6 train and 3 test per class."""
    root = tmp_path_factory.mktemp('images')
    for split, count in (('train', 6), ('test', 3)):
        for name in ('airplane', 'ship'):
            src = osp.join(cifar_subset, split, name)
            (root / split / name).mkdir(parents=True)
            for file in sorted(os.listdir(src))[:count]:
                shutil.copy(osp.join(src, file), root / split / name / file)
    return str(root)


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    backbone = ResNet_CIFAR(depth=18, stem_channels=4, base_channels=4)
    cfg = Config(dict(model=dict(type='SimSiam', backbone=TINY)))
    path = tmp_path / 'ssql.pth'
    torch.save(dict(state_dict={f'backbone.{k}': v for k, v in
                                backbone.state_dict().items()},
                    meta=dict(cfg=cfg.pretty_text)), path)
    return str(path)


def _run_tool(repo_root, monkeypatch, argv):
    tool = osp.join(repo_root, 'tools', 'bit_sweep.py')
    monkeypatch.setattr(sys, 'argv', [tool, *argv])
    runpy.run_path(tool, run_name='__main__')


def test_observer_reaches_calibration(repo_root, data_dir, checkpoint,
                                      tmp_path, monkeypatch):
    used = []
    real = pretrained.calibrate

    def spy(model, batches, num_batches=None, forward=None, observer='minmax',
            ptq=None):
        seen = real(model, batches, num_batches, forward, observer, ptq)
        used.append({type(layer.input_quant.observer)
                     for layer in model.modules() if hasattr(layer, 'input_quant')})
        return seen

    monkeypatch.setattr(pretrained, 'calibrate', spy)
    out = tmp_path / 'out'
    _run_tool(repo_root, monkeypatch, [
        checkpoint, '--data', data_dir, '--bits', 'fp', '4/4', '2/4', '--knn',
        '--observer', 'percentile:percentile=99.9', '--calib-batches', '1',
        '--batch-size', '8', '--k', '3', '--out', str(out)])
    assert used == [{PercentileObserver}, {PercentileObserver}]  # not for FP
    result = json.loads((out / 'bit_sweep.json').read_text())
    assert result['meta']['options']['observer'] == 'percentile:percentile=99.9'
    assert list(result['knn']['ssql']) == ['FP', '4w4a', '2w4a']

    used.clear()
    _run_tool(repo_root, monkeypatch, [
        checkpoint, '--data', data_dir, '--bits', '4/4', '--knn', '--observer',
        'mse', '--calib-batches', '1', '--batch-size', '8', '--k', '3',
        '--out', str(out)])
    assert used == [{MSEObserver}]


def test_unknown_observer_fails_before_any_work(repo_root, data_dir, checkpoint,
                                                monkeypatch, capsys):
    with pytest.raises(SystemExit):
        _run_tool(repo_root, monkeypatch, [
            checkpoint, '--data', data_dir, '--observer', 'entropy'])
    assert "Unknown observer 'entropy'" in capsys.readouterr().err


def test_ptq_reconstructs_each_setting_from_the_checkpoint(
        repo_root, data_dir, checkpoint, tmp_path, monkeypatch):
    from ssql_mm.quantization.layers import QuantLayerMixin
    baked = []
    real = pretrained.calibrate

    def spy(model, batches, num_batches=None, forward=None, observer='minmax',
            ptq=None):
        layers = [m for m in model.modules() if isinstance(m, QuantLayerMixin)
                  and m.weight_quant.active]
        before = [layer.weight.detach().clone() for layer in layers]
        seen = real(model, batches, num_batches, forward, observer, ptq)
        baked.append(dict(
            ptq=ptq,
            frozen=all(layer.weight_quant.max_abs is not None
                       for layer in layers),
            first_weight=before[0],
            changed=any(not torch.equal(b, layer.weight)
                        for b, layer in zip(before, layers))))
        return seen

    monkeypatch.setattr(pretrained, 'calibrate', spy)
    out = tmp_path / 'out'
    ptq = 'adaround:iters=4,images=8,batch_size=4'
    _run_tool(repo_root, monkeypatch, [
        checkpoint, '--data', data_dir, '--bits', '4/4', '2/4', '--knn',
        '--ptq', ptq, '--calib-batches', '1', '--batch-size', '8', '--k', '3',
        '--out', str(out)])
    assert [b['ptq'] for b in baked] == [ptq, ptq]
    assert all(b['frozen'] and b['changed'] for b in baked)
    # The 2w4a model starts from the checkpoint, not from the baked 4w4a one.
    assert torch.equal(baked[0]['first_weight'], baked[1]['first_weight'])
    result = json.loads((out / 'bit_sweep.json').read_text())
    assert result['meta']['options']['ptq'] == ptq


def test_unknown_ptq_argument_fails_before_any_work(
        repo_root, data_dir, checkpoint, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _run_tool(repo_root, monkeypatch, [
            checkpoint, '--data', data_dir, '--ptq', 'brecq:iterations=5'])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --ptq: PTQ method 'brecq' takes no argument" in err
    assert 'Traceback' not in err
