"""From a checkpoint to ONNX: calibration, frozen ranges, head, downstream."""
import json
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS
from PIL import Image
from torch import nn

import ssql_mm.models  # noqa: F401
from ssql_mm.checkpoint import CheckpointMismatchError
from ssql_mm.deploy import (OnnxRunner, build_backbone, export_checkpoint,
                            export_configured_backbone, output_parity)
from ssql_mm.evaluation import (extract_features, load_pretrained,
                                parse_bit_setting)
from ssql_mm.quantization import calibrate, freeze_ranges

BACKBONE = dict(type='ResNet_CIFAR', depth=18, base_channels=8)
MEAN, STD = [120.0, 115.0, 100.0], [60.0, 58.0, 62.0]


def randomize_bn(model):
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.3, 0.3)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.2, 1.5)


def write_checkpoint_file(path, backbone_cfg, state, extra=None):
    cfg = Config(dict(model=dict(
        backbone=backbone_cfg,
        data_preprocessor=dict(mean=MEAN, std=STD))))
    weights = {f'backbone.{k}': v for k, v in state.items()}
    weights.update(extra or {})
    torch.save({'state_dict': weights, 'meta': {'cfg': cfg.pretty_text}},
               path)
    return str(path)


@pytest.fixture(scope='module')
def ssl_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = MODELS.build(BACKBONE)
    randomize_bn(model)
    path = tmp_path_factory.mktemp('ckpt') / 'ssl.pth'
    return write_checkpoint_file(path, BACKBONE, model.state_dict())


def uint8_images(n, size=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8,
                         generator=gen)


def normalized(images):
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (images.float() - mean) / std


def test_export_calibrates_and_saves_the_exact_reference(tmp_path,
                                                         ssl_checkpoint):
    out, calib = str(tmp_path / 'm.onnx'), str(tmp_path / 'calib.pth')
    # Conv-input placement: its export parity is exact (the integer
    # placement's is measured in docs/deploy.md and test_placement_export_*).
    report, model = export_checkpoint(
        ssl_checkpoint, out, '4/4', calib_images=uint8_images(32),
        calib_batches=2, batch_size=16, placement='inputs',
        save_calibrated_to=calib)
    assert report.outputs == ['features'] and report.quantized
    runner = OnnxRunner(out, threads=1)
    assert json.loads(runner.metadata['ssql_mm.mean']) == MEAN
    assert runner.metadata['ssql_mm.bits'] == '4/4'

    # The saved reference is the calibrated model, without calibrating again
    pretrained = load_pretrained(calib)
    reference = build_backbone(pretrained, parse_bit_setting('4/4'), calib)
    test = uint8_images(8, seed=1)
    ref_feats = extract_features(reference, test, MEAN, STD, 8)
    with torch.no_grad():
        exported_feats = model(normalized(test))
    torch.testing.assert_close(ref_feats, exported_feats)
    onnx_feats = runner.extract(test, MEAN, STD, batch_size=4)
    assert output_parity(ref_feats, onnx_feats, 4).within_one_step >= 0.999


def test_frozen_ranges_in_checkpoint_replace_calibration(tmp_path,
                                                         ssl_checkpoint):
    calib = str(tmp_path / 'calib.pth')
    export_checkpoint(ssl_checkpoint, str(tmp_path / 'a.onnx'), '8/8',
                      calib_images=uint8_images(16), calib_batches=1,
                      batch_size=16, save_calibrated_to=calib)
    first = OnnxRunner(str(tmp_path / 'a.onnx'))(normalized(uint8_images(4)))
    export_checkpoint(calib, str(tmp_path / 'b.onnx'), '8/8')
    second = OnnxRunner(str(tmp_path / 'b.onnx'))(normalized(uint8_images(4)))
    np.testing.assert_array_equal(first['features'], second['features'])


def test_missing_ranges_checkpoint_misfit_and_bad_bits(tmp_path,
                                                       ssl_checkpoint):
    out = str(tmp_path / 'm.onnx')
    with pytest.raises(ValueError, match='no frozen activation ranges.*'
                       '--calib-data'):
        export_checkpoint(ssl_checkpoint, out, '8/8')
    with pytest.raises(ValueError, match="Unknown bit setting '8-8'"):
        export_checkpoint(ssl_checkpoint, out, '8-8')
    with pytest.raises(ValueError, match='12-bit weights cannot be exported'):
        export_checkpoint(ssl_checkpoint, out, '12/8')
    deeper = write_checkpoint_file(
        tmp_path / 'misfit.pth', dict(BACKBONE, depth=34),
        MODELS.build(BACKBONE).state_dict())
    with pytest.raises(CheckpointMismatchError, match='does not fit'):
        export_checkpoint(deeper, out, '8/8', calib_images=uint8_images(8))
    assert not osp.exists(out)


def test_linear_head_adds_logits(tmp_path, ssl_checkpoint):
    torch.manual_seed(1)
    weight, bias = torch.randn(10, 64), torch.randn(10)
    head = str(tmp_path / 'head.pth')
    torch.save({'state_dict': {'head.fc.weight': weight,
                               'head.fc.bias': bias}}, head)
    out = str(tmp_path / 'm.onnx')
    export_checkpoint(ssl_checkpoint, out, '8/8', head=head,
                      calib_images=uint8_images(16), calib_batches=1,
                      batch_size=16)
    result = OnnxRunner(out)(normalized(uint8_images(4)))
    feats = torch.from_numpy(result['features'])
    torch.testing.assert_close(torch.from_numpy(result['logits']),
                               feats @ weight.T + bias, atol=1e-4, rtol=1e-4)
    torch.save({'state_dict': {'head.fc.weight': torch.randn(10, 32),
                               'head.fc.bias': bias}}, head)
    with pytest.raises(CheckpointMismatchError, match='takes 32 features'):
        export_checkpoint(ssl_checkpoint, out, '8/8', head=head,
                          calib_images=uint8_images(16))


def test_downstream_backbone_exports_as_configured(tmp_path):
    """mmdet/mmseg style: the config's bits, frozen ranges, all stages."""
    cfg = dict(type='mmpretrain.QuantResNetV1c', depth=18, base_channels=8,
               stem_channels=8, w_bits=4, a_bits=4, out_indices=(0, 1, 2, 3),
               strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4),
               init_cfg=dict(type='Pretrained', checkpoint='unused.pth'))
    torch.manual_seed(0)
    backbone = MODELS.build({k: v for k, v in cfg.items() if k != 'init_cfg'})
    randomize_bn(backbone)
    backbone.eval()
    calibrate(backbone, [torch.randn(4, 3, 32, 32)])
    freeze_ranges(backbone)
    ckpt = write_checkpoint_file(tmp_path / 'seg.pth', cfg,
                                 backbone.state_dict(),
                                 extra={'decode_head.conv.weight':
                                        torch.zeros(1)})
    config = tmp_path / 'seg_config.py'
    config.write_text(Config(dict(model=dict(
        type='EncoderDecoder', backbone=cfg,
        data_preprocessor=dict(mean=MEAN, std=STD)))).pretty_text)
    out = str(tmp_path / 'backbone.onnx')
    report, built = export_configured_backbone(str(config), ckpt, out)
    assert report.outputs == ['stage0', 'stage1', 'stage2', 'stage3']
    x = torch.randn(2, 3, 40, 48)  # any size: H and W stay dynamic
    with torch.no_grad():
        expected = backbone(x)
    outputs = OnnxRunner(out, threads=1)(x)
    for i, ref in enumerate(expected):
        got = torch.from_numpy(outputs[f'stage{i}'])
        assert got.shape == ref.shape
        assert output_parity(ref, got, 4).within_one_step >= 0.999


def write_image_folder(root, classes=('cat', 'dog'), per_class=6, seed=0):
    rng = np.random.default_rng(seed)
    for split in ('train', 'test'):
        for cls in classes:
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f'{i}.png')
    return str(root)


def run_tool(monkeypatch, script, args):
    tools = osp.join(osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))), 'tools', 'deploy')
    monkeypatch.syspath_prepend(tools)
    module = __import__(script)
    monkeypatch.setattr(sys, 'argv', [script] + args)
    module.main()


def test_tools_export_then_evaluate(tmp_path, monkeypatch, capsys,
                                    ssl_checkpoint):
    data = write_image_folder(tmp_path / 'data')
    out, calib = str(tmp_path / 'm.onnx'), str(tmp_path / 'calib.pth')
    run_tool(monkeypatch, 'export_onnx', [
        ssl_checkpoint, '--bits', '8/8', '--calib-data',
        osp.join(data, 'train'), '--calib-batches', '1', '--out', out,
        '--save-calibrated', calib, '--placement', 'inputs'
    ])
    assert 'quantized layers: 21' in capsys.readouterr().out
    result_file = str(tmp_path / 'eval.json')
    run_tool(monkeypatch, 'eval_onnx', [
        out, '--data', data, '--reference', calib, '--knn', '--k', '3',
        '--out', result_file
    ])
    with open(result_file) as f:
        result = json.load(f)
    assert result['num_train'] == 12 and result['num_test'] == 12
    assert 0 <= result['onnxruntime']['knn'] <= 100
    assert result['parity']['within_one_step'] >= 0.999

    with pytest.raises(SystemExit):
        run_tool(monkeypatch, 'export_onnx',
                 [ssl_checkpoint, '--bits', '9/9', '--out', out])
    assert '9-bit weights cannot be exported' in capsys.readouterr().err
