"""Official SSQL -> ssql_mm conversion and the torchvision export.

The official layout is rebuilt here from its description: BatchNorms stored
inside the conv/linear they follow (``<layer>.bn_function.*``), quantizer
state next to the weights, the CIFAR shortcut as one conv named
``layerX.0.downsample``, the projector as ``fc.0/fc.3/fc.6``.
"""
import re
import runpy
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torchvision
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

import ssql_mm  # noqa: F401
from ssql_mm.checkpoint import (CheckpointMismatchError,
                                convert_official_file, convert_official_ssql,
                                export_backbone, safe_load)

REPO = Path(__file__).resolve().parents[2]
SMALL = dict(stem_channels=8, base_channels=8)


@pytest.fixture(autouse=True)
def mmpretrain_scope():
    """Build with mmpretrain's registry whatever scope an earlier test set."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


def simsiam(backbone: dict, feat: int, hid: int = 32) -> nn.Module:
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='SimSiam',
        backbone=backbone,
        neck=dict(type='NonLinearNeck', in_channels=feat, hid_channels=hid,
                  out_channels=hid, num_layers=3, with_last_bn_affine=False,
                  with_avg_pool=True),
        head=dict(type='LatentPredictHead',
                  loss=dict(type='CosineSimilarityLoss'),
                  predictor=dict(type='NonLinearNeck', in_channels=hid,
                                 hid_channels=hid // 2, out_channels=hid,
                                 with_avg_pool=False, with_last_bn=False,
                                 with_last_bias=True))))
    # make running statistics distinguishable from their defaults
    for name, value in model.state_dict().items():
        if 'running' in name:
            value.uniform_(0.5, 1.5)
    return model


def _official_module(mm_module: str, cifar_shortcut: bool) -> tuple:
    """ssql_mm module name -> (official module, BN stored inside?)."""
    if mm_module.startswith('backbone.'):
        name = mm_module[len('backbone.'):]
        if name == 'bn1':
            return 'encoder_q.model.conv1', True
        block = re.match(r'^(layer\d+\.\d+)\.(\w+)(?:\.(\d))?$', name)
        if block and block.group(2).startswith('bn'):
            return (f'encoder_q.model.{block.group(1)}.conv'
                    f'{block.group(2)[2:]}'), True
        if block and block.group(2) == 'downsample':
            conv = f'encoder_q.model.{block.group(1)}.downsample'
            conv = conv if cifar_shortcut else conv + '.0'
            return conv, block.group(3) == '1'
        return f'encoder_q.model.{name}', False
    if mm_module.startswith('neck.'):
        kind, idx = mm_module[len('neck.'):len('neck.') + 2], \
            int(mm_module[-1])
        return f'encoder_q.model.fc.{3 * idx}', kind == 'bn'
    kind, idx = mm_module[len('head.predictor.'):][:2], int(mm_module[-1])
    if kind == 'bn':
        return 'predictor.1', False
    return f'predictor.{3 * idx}', False


def make_official(model: nn.Module, cifar_shortcut: bool = True,
                  module_prefix: bool = True) -> dict:
    """An official-layout SSQL-SimSiam checkpoint with ``model``'s weights."""
    state = {}
    quantized = set()
    for key, value in model.state_dict().items():
        module, param = key.rsplit('.', 1)
        owner, bn_inside = _official_module(module, cifar_shortcut)
        official = f'{owner}.bn_function.{param}' if bn_inside else \
            f'{owner}.{param}'
        state[official] = value.clone()
        if param == 'weight' and not bn_inside and value.dim() > 1 \
                and owner.startswith('encoder_q'):
            quantized.add(owner)
    state['encoder_q.model.fc.6.bias'] = torch.randn(
        model.neck.fc2.out_features)
    for owner in sorted(quantized):
        state[f'{owner}.weight_quantizer.weight'] = state[f'{owner}.weight']
        for quantizer in ('weight_quantizer', 'output_quantizer'):
            for stat in ('min_val', 'max_val'):
                state[f'{owner}.{quantizer}.observer.{stat}'] = torch.rand(1)
    for block in {re.match(r'encoder_q\.model\.layer\d+\.\d+', o).group(0)
                  for o in quantized if '.layer' in o}:
        state[f'{block}.output_quantizer.observer.min_val'] = torch.zeros(1)
    if module_prefix:
        state = {f'module.{k}': v for k, v in state.items()}
    return {'epoch': 400, 'state_dict': state, 'optimizer': {}}


def assert_same(converted: dict, model: nn.Module, prefix: str = '') -> None:
    result = model.load_state_dict(
        {k[len(prefix):]: v for k, v in converted.items()
         if k.startswith(prefix)}, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


@pytest.mark.parametrize('module_prefix', [True, False])
def test_official_cifar_resnet18(module_prefix):
    source = simsiam(dict(type='ResNet_CIFAR', depth=18, **SMALL), 64)
    official = make_official(source, module_prefix=module_prefix)
    converted, report = convert_official_ssql(official, depth=18)

    assert report.depth == 18 and report.unmapped == []
    reasons = list(report.dropped.values())
    assert reasons.count('quantizer state (ssql_mm keeps it '
                         'non-persistent)') == sum(
                             'quantizer' in k for k in official['state_dict'])
    assert any('last bias' in r for r in reasons)
    expected = source.state_dict()
    assert set(converted) == set(expected)
    for key, value in expected.items():
        assert torch.equal(converted[key], value), key

    target = simsiam(dict(type='ResNet_CIFAR', depth=18, **SMALL), 64)
    assert_same(converted, target)
    bare = MODELS.build(dict(type='ResNet_CIFAR', depth=18, **SMALL))
    assert_same(converted, bare, prefix='backbone.')
    quant = MODELS.build(dict(type='QuantResNet_CIFAR', depth=18, w_bits=4,
                              a_bits=4, **SMALL))
    assert_same(converted, quant, prefix='backbone.')


def test_official_checkpoint_loads_into_ssql_simsiam_config():
    cfg = Config.fromfile(
        str(REPO / 'configs/ssql/'
            'ssql-simsiam_resnet18_4xb128-coslr-400e_cifar10.py'))
    ssql = MODELS.build(cfg.model)
    float_cfg = cfg.model.copy()
    float_cfg.type = 'SimSiam'
    float_cfg.pop('quant_cfg')
    source = MODELS.build(float_cfg)
    converted, _ = convert_official_ssql(make_official(source), depth=18)
    assert_same(converted, ssql)
    for key, value in ssql.state_dict().items():
        assert torch.equal(value, source.state_dict()[key]), key


def test_official_resnet50_imagenet_layout():
    source = simsiam(dict(type='ResNet', depth=50, **SMALL), 256)
    official = make_official(source, cifar_shortcut=False)
    converted, report = convert_official_ssql(official)
    assert report.depth == 50
    assert_same(converted, simsiam(dict(type='ResNet', depth=50, **SMALL),
                                   256))


def test_depth_mismatch_and_unknown_keys():
    official = make_official(
        simsiam(dict(type='ResNet_CIFAR', depth=18, **SMALL), 64))
    with pytest.raises(CheckpointMismatchError, match='ResNet-18.*ResNet-50'):
        convert_official_ssql(official, depth=50)
    official['state_dict']['module.encoder_q.model.mystery.weight'] = \
        torch.zeros(1)
    with pytest.raises(CheckpointMismatchError, match='mystery'):
        convert_official_ssql(official)
    _, report = convert_official_ssql(official, strict=False)
    # reported without the DDP 'module.' wrapper, like every mapped key
    assert report.unmapped == ['encoder_q.model.mystery.weight']
    assert 'mystery' in report.summary()


def test_backbone_only_file_and_script(tmp_path, monkeypatch, capsys):
    source = simsiam(dict(type='ResNet_CIFAR', depth=18, **SMALL), 64)
    src = tmp_path / 'official.pth'
    torch.save(make_official(source), src)
    dst = tmp_path / 'backbone.pth'
    report = convert_official_file(str(src), str(dst), backbone_only=True)
    assert any(r == 'not part of the backbone'
               for r in report.dropped.values())
    saved = safe_load(dst)
    assert saved['meta']['epoch'] == 400
    bare = MODELS.build(dict(type='ResNet_CIFAR', depth=18, **SMALL))
    assert_same(saved['state_dict'], bare)

    script = REPO / 'tools/model_converters/ssql_official_to_mm.py'
    monkeypatch.setattr(sys, 'argv', [str(script), str(src),
                                      str(tmp_path / 'full.pth'),
                                      '--depth', '34'])
    with pytest.raises(SystemExit) as failed:
        runpy.run_path(str(script), run_name='__main__')
    assert failed.value.code == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith('ssql_official_to_mm: error: Depth mismatch')
    assert '\n' not in error and '--depth 18' in error
    monkeypatch.setattr(sys, 'argv', sys.argv[:3])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(script), run_name='__main__')
    assert done.value.code == 0
    assert 'dropped' in capsys.readouterr().out
    assert_same(safe_load(tmp_path / 'full.pth')['state_dict'],
                simsiam(dict(type='ResNet_CIFAR', depth=18, **SMALL), 64))


def _torchvision_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    return model.layer4(model.layer3(model.layer2(model.layer1(x))))


def test_to_torchvision_resnet18_same_features():
    torch.manual_seed(0)
    source = simsiam(dict(type='ResNet', depth=18), 512)
    converted, report = export_backbone(
        {'state_dict': source.state_dict()}, 'torchvision', depth=18)
    assert all(k.startswith(('neck.', 'head.')) for k in report.dropped)
    tv = torchvision.models.resnet18()
    result = tv.load_state_dict(converted, strict=False)
    assert sorted(result.missing_keys) == ['fc.bias', 'fc.weight']
    assert result.unexpected_keys == []
    source.eval(), tv.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = source.backbone(x)[-1]
        assert torch.allclose(_torchvision_features(tv, x), expected,
                              atol=1e-5)
    with pytest.raises(CheckpointMismatchError, match='ResNet-18'):
        export_backbone(source.state_dict(), 'torchvision', depth=50)


def test_to_torchvision_cifar_stem_and_refusals(tmp_path):
    backbone = MODELS.build(dict(type='ResNet_CIFAR', depth=18))
    # a backbone-only state dict is taken whole
    converted, report = export_backbone(backbone.state_dict(), 'torchvision')
    assert any('3x3 CIFAR' in n for n in report.notes)
    tv = torchvision.models.resnet18()
    tv.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    tv.maxpool = nn.Identity()
    assert tv.load_state_dict(converted, strict=False).missing_keys == [
        'fc.weight', 'fc.bias']
    deep_stem = MODELS.build(dict(type='ResNetV1c', depth=18, **SMALL))
    with pytest.raises(CheckpointMismatchError, match='deep stem'):
        export_backbone(deep_stem.state_dict(), 'torchvision')
    avg_shortcut = MODELS.build(dict(type='ResNetV1d', depth=18, **SMALL))
    state = {k: v for k, v in avg_shortcut.state_dict().items()
             if not k.startswith('stem.')}
    with pytest.raises(CheckpointMismatchError, match='no torchvision'):
        export_backbone(state, 'torchvision')
    _, report = export_backbone(state, 'torchvision', strict=False)
    assert report.unmapped and all('downsample' in k
                                   for k in report.unmapped)
