"""The CPU demo end to end at a tiny size: QAT (train + test at the same
bits from the saved checkpoint) and PTQ (train float, test at 4w4a)."""
import os.path as osp

import pytest
import torch
from downstream_utils import config
from mmengine.runner import Runner

import ssql_mm  # noqa: F401
from ssql_mm.quantization.fake_quantize import ActivationFakeQuantize

DET = 'configs/demo/retinanet_ssql-r18-w16-{}_paste-cifar10-96x96.py'
SEG = 'configs/demo/fcn_ssql-r18-w16-d4-{}_paste-cifar10-96x96.py'


@pytest.fixture(scope='module')
def cifar_checkpoint(ssql_checkpoint):
    return ssql_checkpoint('ResNet_CIFAR', 18, stem_channels=16,
                           base_channels=16)


def _tiny(path, root, checkpoint, work_dir):
    cfg = config(path)
    cfg.work_dir = str(work_dir)
    cfg.model.backbone.init_cfg.checkpoint = checkpoint
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg[name]
        loader.batch_size = 4
        loader.dataset.data_root = root
        loader.dataset.indices = 8
    cfg.custom_hooks[0].num_batches = 1
    if 'max_iters' in cfg.train_cfg:
        cfg.train_cfg.update(max_iters=2, val_interval=2)
        cfg.default_hooks.checkpoint.interval = 2
    else:
        cfg.train_cfg.update(max_epochs=1, val_interval=1)
        cfg.default_hooks.checkpoint.interval = 1
        for name in ('val_evaluator', 'test_evaluator'):
            cfg[name].ann_file = osp.join(root, 'annotations', 'val.json')
        # An untrained head scores below the default threshold.
        cfg.model.test_cfg.score_thr = 0.
    return cfg


def _active(model):
    """The activation quantizers that quantize (the placement leaves the
    others at ``bits=None``)."""
    return {name: m for name, m in model.named_modules()
            if isinstance(m, ActivationFakeQuantize) and m.bits is not None}


def _ranges(model):
    """Ranges of the active quantizers; each must have been measured."""
    active = _active(model)
    assert active and all(m.frozen for m in active.values())
    return {name: (m.observer.min_val.item(), m.observer.max_val.item())
            for name, m in active.items()}


@pytest.mark.slow
def test_detection_qat_4w4a_trains_and_tests_at_the_same_bits(
        paste_root, cifar_checkpoint, tmp_path):
    cfg = _tiny(DET.format('4w4a'), paste_root, cifar_checkpoint,
                tmp_path / 'train')
    runner = Runner.from_cfg(cfg)
    runner.train()
    trained = _ranges(runner.model.backbone)
    assert all(low < high for low, high in trained.values())
    metrics = runner.val_loop.run()
    assert 0. <= metrics['coco/bbox_mAP'] <= 1.

    cfg = _tiny(DET.format('4w4a'), paste_root, cifar_checkpoint,
                tmp_path / 'test')
    cfg.load_from = osp.join(tmp_path, 'train', 'epoch_1.pth')
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    assert 0. <= metrics['coco/bbox_mAP'] <= 1.
    # Ranges come from the QAT checkpoint, not from a new calibration.
    assert _ranges(runner.model.backbone) == trained
    assert runner.model.backbone.layer3[0].conv1.weight_quant.bits == 4


@pytest.mark.slow
def test_segmentation_ptq_trains_float_and_tests_at_4w4a(
        paste_root, cifar_checkpoint, tmp_path):
    cfg = _tiny(SEG.format('fp'), paste_root, cifar_checkpoint,
                tmp_path / 'train')
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert not _active(runner.model.backbone)

    cfg = _tiny(SEG.format('fp'), paste_root, cifar_checkpoint,
                tmp_path / 'ptq')
    cfg.merge_from_dict({'model.backbone.w_bits': 4,
                         'model.backbone.a_bits': 4})
    cfg.load_from = osp.join(tmp_path, 'train', 'iter_2.pth')
    saved = torch.load(cfg.load_from, weights_only=False)['state_dict']
    # Float training measured no range, so the checkpoint carries none ...
    assert not [k for k in saved if k.endswith('input_quant.min_val')]
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    assert 0. <= metrics['mIoU'] <= 100.
    backbone = runner.model.backbone
    assert backbone.layer3[0].conv2.input_quant.bits == 4
    assert backbone.layer3[0].output_quant.bits == 4
    assert backbone.layer3[0].conv1.weight_quant.bits == 4
    # ... and the same hook block measures them on the loaded weights.
    ptq_ranges = _ranges(backbone)
    assert all(low < high for low, high in ptq_ranges.values())
