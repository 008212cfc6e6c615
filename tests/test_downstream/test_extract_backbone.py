"""tools/extract_backbone.py and ssql_mm.checkpoint.export: backbone-only
checkpoints that load strictly."""
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

from ssql_mm.checkpoint import (CheckpointMismatchError, export_backbone,
                                export_backbone_file)


def test_torchvision_format_loads_strictly_into_resnet18(ssql_checkpoint,
                                                         tmp_path):
    src = ssql_checkpoint('ResNet', 18)
    dst = str(tmp_path / 'r18_tv.pth')
    report = export_backbone_file(src, dst, 'torchvision')
    state = torch.load(dst)
    model = torchvision.models.resnet18()
    model.fc = torch.nn.Identity()  # the checkpoint has no classifier
    model.load_state_dict(state, strict=True)
    assert sorted(report.dropped) == ['head.predictor.mlp.0.weight',
                                      'neck.mlp.0.weight']
    assert all('not part of the backbone' in r
               for r in report.dropped.values())
    assert len(report.mapped) == len(state) and not report.renamed
    assert report.depth == 18
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
    state, report = export_backbone(checkpoint, 'mmdet')
    MMDetResNetV1d(depth=18).load_state_dict(state, strict=True)
    assert report.renamed['backbone.stem.1.conv.weight'] == 'stem.3.weight'
    # The mmpretrain layout is kept as is.
    state, _ = export_backbone(checkpoint, 'mmpretrain')
    ResNetV1d(depth=18).load_state_dict(state, strict=True)


def test_deep_stem_has_no_torchvision_layout(ssql_checkpoint):
    checkpoint = torch.load(ssql_checkpoint('ResNetV1d', 18))
    with pytest.raises(CheckpointMismatchError,
                       match='deep stem.*--format mmdet'):
        export_backbone(checkpoint, 'torchvision')


def test_ranges_are_dropped_and_bad_input_is_named(ssql_checkpoint):
    extra = {'backbone.layer1.0.conv1.input_quant.min_val': torch.tensor(0.),
             'backbone.layer1.0.conv1.input_quant.max_val': torch.tensor(3.)}
    checkpoint = torch.load(ssql_checkpoint('ResNet', 18, extra=extra))
    state, report = export_backbone(checkpoint, 'torchvision')
    ranges = {k: r for k, r in report.dropped.items() if 'range' in r}
    assert sorted(ranges) == ['backbone.layer1.0.conv1.input_quant.max_val',
                              'backbone.layer1.0.conv1.input_quant.min_val']
    assert not any('input_quant' in k for k in state)
    with pytest.raises(CheckpointMismatchError,
                       match=r"'encoder\.'.*--prefix"):
        export_backbone(checkpoint, 'mmdet', prefix='encoder')
    with pytest.raises(ValueError, match='choose one of'):
        export_backbone(checkpoint, 'onnx')
    with pytest.raises(CheckpointMismatchError, match='no state dict'):
        export_backbone(dict(epoch=3), 'mmdet')
