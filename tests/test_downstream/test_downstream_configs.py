"""Every downstream config loads, builds, and puts its bits on every conv."""
import glob
import os.path as osp
import re

import pytest
from downstream_utils import REPO, build_model, config
from torch import nn

import ssql_mm  # noqa: F401  (registers the quantized backbones)
from ssql_mm.quantization import QConv2d, quant_layers

CONFIGS = sorted(
    osp.relpath(p, REPO) for p in glob.glob(
        osp.join(REPO, 'configs', 'benchmarks', 'mm*', '*.py')) +
    glob.glob(osp.join(REPO, 'configs', 'demo', '*_paste-*.py')))


def _scope(path: str) -> str:
    return 'mmseg' if re.search(r'mmseg|fcn_', path) else 'mmdet'


def _build(cfg, scope: str):
    cfg.model.backbone.init_cfg = None
    return build_model(cfg, scope)


def _flat(cfg) -> dict:
    out = {}

    def walk(node, key):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f'{key}.{k}' if key else k)
        else:
            out[key] = node

    walk(cfg.to_dict(), '')
    return out


def _float_sibling(path: str) -> str:
    return re.sub(r'-\d+w\d+a([_-])', r'-fp\1', path)


def test_the_expected_configs_exist():
    names = [osp.basename(p) for p in CONFIGS]
    for model in ('faster-rcnn', 'retinanet', 'mask-rcnn'):
        for bits in ('fp', '8w8a', '4w4a'):
            assert f'{model}_ssql-r50-{bits}_fpn_1x_coco.py' in names
    for bits in ('fp', '8w8a', '4w4a'):
        for head in ('fcn', 'deeplabv3'):
            assert (f'{head}_ssql-r50-d8-{bits}_4xb2-80k_cityscapes-512x1024.py'
                    in names)
            assert f'{head}_ssql-r50-d8-{bits}_4xb4-20k_voc12aug-512x512.py' in names
        assert f'upernet_ssql-r50-{bits}_4xb4-160k_ade20k-512x512.py' in names
    for epochs in (8, 16):
        assert (f'retinanet_ssql-r18-cifar-w16_fpn_1xb16-{epochs}e_paste4-'
                'cifar10-64x64.py' in names)
    assert ('fcn_ssql-r18-cifar-w16-d4_1xb8-2000it_paste4-cifar10-64x64.py'
            in names)


def test_the_16_epoch_detection_benchmark_anneals_over_16_epochs():
    cfg = config(next(p for p in CONFIGS if '1xb16-16e_paste4' in p))
    assert cfg.train_cfg.max_epochs == 16 and cfg.train_cfg.val_interval == 16
    warmup, cosine = cfg.param_scheduler
    assert warmup.type == 'LinearLR' and warmup.end == 50
    assert cosine.type == 'CosineAnnealingLR'
    assert cosine.T_max == cosine.end == 16
    assert cfg.default_hooks.checkpoint.interval == 16
    # the rest is the 8-epoch benchmark's
    assert cfg.default_hooks.logger.interval == 50
    assert cfg.model.bbox_head.num_classes == 4
    assert cfg.optim_wrapper.optimizer.lr == 2e-3


@pytest.mark.parametrize('path', CONFIGS)
def test_config_builds_with_its_bits_on_every_conv(path):
    cfg = config(path)
    assert cfg.custom_imports.imports == ['ssql_mm']
    backbone_cfg = cfg.model.backbone
    assert backbone_cfg.type.startswith('mmpretrain.Quant')
    if osp.basename(path).endswith('_paste4-cifar10-64x64.py'):
        # The CPU downstream benchmarks start from random init; transfer.py
        # --pretrained gives them a checkpoint.
        assert backbone_cfg.init_cfg is None
    else:
        assert backbone_cfg.init_cfg.type == 'Pretrained'
        assert backbone_cfg.init_cfg.prefix == 'backbone.'
    if _scope(path) == 'mmseg':
        assert cfg.model.pretrained is None
    match = re.search(r'-(\d+)w(\d+)a[_-]', osp.basename(path))
    w_bits, a_bits = (int(match[1]), int(match[2])) if match else (None, None)
    assert (backbone_cfg.w_bits or None, backbone_cfg.a_bits or None) == (
        w_bits, a_bits)
    hooks = [h for h in cfg.custom_hooks if 'QuantCalibrationHook' in h.type]
    assert len(hooks) == 1

    if w_bits is None:
        backbone = _build(cfg, _scope(path)).backbone
    else:
        # A quantized config differs from its float sibling only in the
        # backbone bits: the sibling builds the whole model, here the
        # backbone (what differs) is built.
        sibling = _flat(config(_float_sibling(path)))
        flat = _flat(cfg)
        diff = {k for k in set(flat) | set(sibling)
                if sibling.get(k) != flat.get(k)}
        assert diff == {'model.backbone.w_bits', 'model.backbone.a_bits'}, diff
        backbone = build_model(cfg, _scope(path), part='backbone')
    convs = [m for m in backbone.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(isinstance(m, QConv2d) for m in convs)
    pinned = backbone.quant_report.overridden
    followers = 0
    for name, layer in quant_layers(backbone):
        want_w = pinned.get(name, {}).get('w_bits', w_bits)
        want_a = pinned.get(name, dict(a_bits=a_bits)).get('a_bits', a_bits)
        assert (layer.weight_quant.bits, layer.input_quant.bits) == (
            want_w, want_a), name
        assert layer.input_quant.mode == 'quantize'
        followers += 'w_bits' not in pinned.get(name, {})
    # The config's weight bits reach most convs (the integer placement pins
    # conv inputs that a block quantizer already quantizes, not weights).
    assert followers > len(convs) // 2
    if w_bits is None:
        assert not pinned


@pytest.mark.parametrize('bits', [1, 17])
def test_bits_outside_the_supported_range_fail_clearly(bits):
    cfg = config('configs/benchmarks/mmdet/faster-rcnn_ssql-r50-fp_fpn_1x_coco.py')
    cfg.merge_from_dict({'model.backbone.w_bits': bits,
                         'model.backbone.depth': 18,
                         'model.neck.in_channels': [64, 128, 256, 512]})
    with pytest.raises(ValueError, match=r'w_bits=.*use an integer in \[2, 16\]'):
        _build(cfg, 'mmdet')
