"""Linear-evaluation configs: the paper protocol, and a real short run of the
4w4a CIFAR config whose calibrated ranges survive its checkpoint."""
import os
import os.path as osp
import shutil

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmpretrain.models.backbones import ResNet_CIFAR
from mmpretrain.registry import MODELS

from ssql_mm.quantization import ActivationFakeQuantize, quant_layers

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LINEAR = osp.join(ROOT, 'configs', 'benchmarks', 'linear')
CIFAR = 'resnet18-cifar_1xb512-linear-steplr-100e_cifar10_{}.py'
SUBSET = osp.join(ROOT, 'data', 'cifar10_subset')


@pytest.mark.parametrize('suffix,bits', [('fp', (0, 0)), ('8w8a', (8, 8)),
                                         ('4w4a', (4, 4)), ('2w4a', (2, 4))])
def test_cifar_linear_protocol(suffix, bits):
    cfg = Config.fromfile(osp.join(LINEAR, CIFAR.format(suffix)))
    backbone = cfg.model.backbone
    assert backbone.type == 'QuantResNet_CIFAR'
    assert (backbone.w_bits, backbone.a_bits) == bits
    assert backbone.frozen_stages == 4 and backbone.norm_eval
    assert backbone.init_cfg.prefix == 'backbone.'
    assert cfg.optim_wrapper.optimizer == dict(
        type='SGD', lr=30., momentum=0.9, weight_decay=0.)
    assert cfg.param_scheduler.milestones == [60, 80]
    assert cfg.train_cfg.max_epochs == 100
    assert cfg.train_dataloader.batch_size == 512
    crop = cfg.train_dataloader.dataset.pipeline[1]
    assert (crop.scale, crop.crop_ratio_range) == (32, (0.8, 1.))
    test = cfg.test_dataloader.dataset.pipeline
    assert (test[1].scale, test[2].crop_size) == (36, 32)
    assert [h.type for h in cfg.custom_hooks] == ['QuantCalibrationHook']


def test_imagenet_linear_config_builds_a_frozen_quant_resnet50():
    cfg = Config.fromfile(
        osp.join(LINEAR, 'resnet50_8xb512-linear-coslr-90e_in1k_4w4a.py'))
    assert cfg.optim_wrapper.optimizer.type == 'LARS'
    assert [h.type for h in cfg.custom_hooks] == ['QuantCalibrationHook']
    backbone = cfg.model.backbone
    backbone.pop('init_cfg')
    model = MODELS.build(backbone)
    assert type(model).__name__ == 'QuantResNet' and model.depth == 50
    assert not any(p.requires_grad for p in model.parameters())
    assert model.layer_bits['layer3.2.conv2'] == (4, 4)


@pytest.fixture(scope='module')
def tiny_cifar(tmp_path_factory):
    """6 train / 2 test real images of each CIFAR-10 class."""
    root = tmp_path_factory.mktemp('cifar')
    for split, count in (('train', 6), ('test', 2)):
        for name in sorted(os.listdir(osp.join(SUBSET, split))):
            src = osp.join(SUBSET, split, name)
            (root / split / name).mkdir(parents=True)
            for file in sorted(os.listdir(src))[:count]:
                shutil.copy(osp.join(src, file), root / split / name / file)
    return str(root)


def _tiny_cfg(tmp_path, data_root, pretrained):
    cfg = Config.fromfile(osp.join(LINEAR, CIFAR.format('4w4a')))
    cfg.model.backbone.update(stem_channels=4, base_channels=4)
    cfg.model.backbone.init_cfg.checkpoint = pretrained
    cfg.model.head.in_channels = 32
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg[name]
        loader.update(batch_size=15, num_workers=0)
        loader.dataset.data_root = data_root
    cfg.custom_hooks[0].num_batches = 2
    cfg.train_cfg.update(max_epochs=2, val_interval=2)
    cfg.default_hooks.checkpoint.interval = 2
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = str(tmp_path / 'work')
    cfg.visualizer = dict(type='UniversalVisualizer', vis_backends=[])
    return cfg


def _ranges(model):
    return {name: (l.input_quant.observer.min_val.clone(),
                   l.input_quant.observer.max_val.clone())
            for name, l in quant_layers(model)}


def test_linear_4w4a_trains_and_restores_calibration(tmp_path, tiny_cifar):
    torch.manual_seed(0)
    pretrained_backbone = ResNet_CIFAR(depth=18, stem_channels=4,
                                       base_channels=4)
    pretrained = str(tmp_path / 'pretrained.pth')
    torch.save(dict(state_dict={
        f'backbone.{k}': v for k, v in pretrained_backbone.state_dict().items()
    }), pretrained)

    cfg = _tiny_cfg(tmp_path, tiny_cifar, pretrained)
    runner = Runner.from_cfg(cfg.copy())
    runner.train()
    model = runner.model
    # The backbone is the pretrained one, untouched by 8 linear-probe steps
    # at lr 30 (frozen weights and BatchNorm statistics).
    for key, value in pretrained_backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value), key
    assert runner.iter == 8
    layers = dict(quant_layers(model.backbone))
    assert len(layers) == 20
    assert all(l.input_quant.frozen for l in layers.values())
    assert layers['layer2.0.conv1'].weight_quant.bits == 4
    ranges = _ranges(model)

    ckpt_path = osp.join(cfg.work_dir, 'epoch_2.pth')
    from ssql_mm.checkpoint import read_checkpoint
    state = read_checkpoint(ckpt_path)['state_dict']
    saved = {k for k in state if k.endswith('_quant.max_val')}
    quantizers = {f'backbone.{name}.max_val'
                  for name, q in model.backbone.named_modules()
                  if isinstance(q, ActivationFakeQuantize) and q.active}
    assert len(quantizers) > 20  # the convs' inputs and the blocks' adds
    assert quantizers <= saved
    assert torch.equal(state['backbone.layer4.1.conv2.input_quant.max_val'],
                       ranges['backbone.layer4.1.conv2'][1])

    # Test from the checkpoint: ranges are restored, not recalibrated (the
    # hook would calibrate on the test images, whose ranges differ).
    test_cfg = _tiny_cfg(tmp_path, tiny_cifar, pretrained)
    test_cfg.custom_hooks[0].dataloader = 'test'
    test_cfg.load_from = ckpt_path
    test_cfg.work_dir = str(tmp_path / 'test')
    tester = Runner.from_cfg(test_cfg)
    metrics = tester.test()
    assert 0.0 <= metrics['accuracy/top1'] <= 100.0
    restored = _ranges(tester.model)
    for name, (low, high) in ranges.items():
        assert torch.equal(restored[name][0], low), name
        assert torch.equal(restored[name][1], high), name
