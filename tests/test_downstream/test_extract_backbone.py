"""tools/extract_backbone.py: backbone-only checkpoints that load strictly."""
import os.path as osp
import runpy
import sys

import pytest
import torch
import torchvision
from downstream_utils import REPO
from mmdet.models.backbones import ResNet as MMDetResNet
from mmdet.models.backbones import ResNetV1d as MMDetResNetV1d
from mmpretrain.models.backbones import ResNet, ResNetV1d

from ssql_mm.models.utils import extract_backbone, save_backbone


def test_torchvision_format_loads_strictly_into_resnet18(ssql_checkpoint,
                                                         tmp_path):
    src = ssql_checkpoint('ResNet', 18)
    dst = str(tmp_path / 'r18_tv.pth')
    report = save_backbone(src, dst, 'torchvision')
    state = torch.load(dst)
    model = torchvision.models.resnet18()
    model.fc = torch.nn.Identity()  # the checkpoint has no classifier
    model.load_state_dict(state, strict=True)
    assert report.other_prefixes == ['neck', 'head']
    assert report.kept == len(state) and not report.renamed
    # Same features as the mmpretrain backbone the weights came from.
    reference = ResNet(depth=18)
    reference.load_state_dict({
        k[len('backbone.'):]: v for k, v in torch.load(src)['state_dict'].items()
        if k.startswith('backbone.')})
    x = torch.rand(2, 3, 64, 64)
    model.eval(), reference.eval()
    with torch.no_grad():
        expected = reference(x)[-1].mean(dim=(2, 3))
        torch.testing.assert_close(model(x), expected)


def test_mmdet_format_loads_strictly_into_mmdet_resnet(ssql_checkpoint,
                                                       tmp_path, monkeypatch):
    src = ssql_checkpoint('ResNet', 18)
    dst = str(tmp_path / 'r18_mmdet.pth')
    tool = osp.join(REPO, 'tools', 'extract_backbone.py')
    monkeypatch.setattr(sys, 'argv', [tool, src, dst, '--format', 'mmdet'])
    runpy.run_path(tool, run_name='__main__')
    saved = torch.load(dst)
    model = MMDetResNet(depth=18)
    model.load_state_dict(saved['state_dict'], strict=True)
    expected = torch.load(src)['state_dict']['backbone.layer3.1.conv2.weight']
    assert torch.equal(model.layer3[1].conv2.weight, expected)
    assert saved['meta']['format'] == 'mmdet'


def test_deep_stem_is_renamed_for_mmdet(ssql_checkpoint):
    checkpoint = torch.load(ssql_checkpoint('ResNetV1d', 18))
    state, report = extract_backbone(checkpoint, 'mmdet')
    MMDetResNetV1d(depth=18).load_state_dict(state, strict=True)
    assert report.renamed['stem.1.conv.weight'] == 'stem.3.weight'
    # The mmpretrain layout is kept as is.
    state, _ = extract_backbone(checkpoint, 'mmpretrain')
    ResNetV1d(depth=18).load_state_dict(state, strict=True)


def test_deep_stem_has_no_torchvision_layout(ssql_checkpoint):
    checkpoint = torch.load(ssql_checkpoint('ResNetV1d', 18))
    with pytest.raises(ValueError, match='deep stem.*--format mmdet'):
        extract_backbone(checkpoint, 'torchvision')


def test_ranges_are_dropped_and_bad_input_is_named(ssql_checkpoint):
    extra = {'backbone.layer1.0.conv1.input_quant.min_val': torch.tensor(0.),
             'backbone.layer1.0.conv1.input_quant.max_val': torch.tensor(3.)}
    checkpoint = torch.load(ssql_checkpoint('ResNet', 18, extra=extra))
    state, report = extract_backbone(checkpoint, 'torchvision')
    assert report.dropped == ['layer1.0.conv1.input_quant.min_val',
                              'layer1.0.conv1.input_quant.max_val']
    assert not any('input_quant' in k for k in state)
    with pytest.raises(ValueError, match=r"'encoder\.'.*--prefix"):
        extract_backbone(checkpoint, 'mmdet', prefix='encoder')
    with pytest.raises(ValueError, match='choose one of'):
        extract_backbone(checkpoint, 'onnx')
    with pytest.raises(ValueError, match='no state dict'):
        extract_backbone(dict(epoch=3), 'mmdet')
