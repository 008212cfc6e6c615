"""tools/benchmarks/transfer.py: fine-tune, PTQ at several bits and
observers, one table; on real CIFAR-10 images at a tiny size."""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS, MODELS

from ssql_mm.evaluation import run_qat_transfer, run_transfer
from ssql_mm.evaluation.transfer import adopt_backbone

DEMO = ('configs/benchmarks/classification/'
        'resnet18-cifar-w16_1xb64-finetune-steplr-10e_cifar10-subset.py')
PRETRAIN = 'configs/baselines/simsiam_resnet18-w16_1xb128-coslr-2500it_cifar10.py'
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader',
           'calib_dataloader')


def tiny_options(data_root):
    options = ['train_cfg.max_epochs=1', 'train_dataloader.batch_size=10',
               'calib_dataloader.batch_size=10', 'custom_hooks.0.num_batches=2',
               'default_hooks.logger.interval=1']
    for loader in LOADERS:
        options += [f'{loader}.num_workers=0',
                    f'{loader}.dataset.data_root={data_root}']
        if loader != 'calib_dataloader':
            options.append(f'{loader}.persistent_workers=False')
    return options


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory, cifar_subset):
    """10 classes of real CIFAR-10 images: 3 train and 2 test per class."""
    root = tmp_path_factory.mktemp('cifar')
    for split, count in (('train', 3), ('test', 2)):
        for name in sorted(os.listdir(osp.join(cifar_subset, split))):
            src = osp.join(cifar_subset, split, name)
            (root / split / name).mkdir(parents=True)
            for file in sorted(os.listdir(src))[:count]:
                shutil.copy(osp.join(src, file), root / split / name / file)
    return str(root)


@pytest.fixture(scope='module')
def pretrained(repo_root, tmp_path_factory):
    """A SimSiam checkpoint as MMEngine writes it (weights and meta cfg)."""
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(osp.join(repo_root, PRETRAIN))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    path = tmp_path_factory.mktemp('pretrained') / 'simsiam.pth'
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(cfg=cfg.pretty_text)), path)
    return str(path)


def float_top1(repo_root, checkpoint, data_root, bits=None):
    """Top-1 of the fine-tuned weights in mmpretrain's float ResNet_CIFAR,
    or with ``bits=(w, a)`` in a QuantResNet_CIFAR built at those bits
    (activation ranges from the checkpoint)."""
    cfg = Config.fromfile(osp.join(repo_root, DEMO))
    backbone = dict(cfg.model.backbone, type='ResNet_CIFAR', init_cfg=None)
    for key in ('w_bits', 'a_bits', 'placement'):
        backbone.pop(key)
    if bits is not None:
        backbone = dict(cfg.model.backbone, init_cfg=None, w_bits=bits[0],
                        a_bits=bits[1])
    model = MODELS.build(dict(cfg.model, backbone=backbone,
                              data_preprocessor=cfg.data_preprocessor))
    state = torch.load(checkpoint, map_location='cpu', weights_only=False)
    model.load_state_dict(state['state_dict'], strict=True)
    model.eval()
    dataset = DATASETS.build(dict(cfg.test_dataloader.dataset,
                                  data_root=data_root))
    batch = pseudo_collate([dataset[i] for i in range(len(dataset))])
    with torch.no_grad():
        samples = model.test_step(batch)
    correct = sum(int(s.pred_label == s.gt_label) for s in samples)
    return 100. * correct / len(samples)


@pytest.mark.slow
def test_transfer_tool_end_to_end(repo_root, tiny_data, pretrained, tmp_path):
    work_dir = tmp_path / 'transfer'
    result = subprocess.run(
        [sys.executable, 'tools/benchmarks/transfer.py', DEMO, '--pretrained',
         pretrained, '--arch-from-checkpoint', '--bits', 'fp', '8/8', '2/4',
         '--observers', 'minmax', 'mse', 'mse+qdrop:iters=3',
         '--work-dir', str(work_dir),
         '--cfg-options', *tiny_options(tiny_data)],
        cwd=repo_root, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    report = json.loads((work_dir / 'transfer.json').read_text())
    assert report['settings'] == ['FP', '8w8a', '2w4a']
    assert report['checkpoints'] == ['minmax', 'mse', 'mse+qdrop:iters=3']
    top1 = report['top1']
    assert all(0. <= v <= 100. for col in top1.values() for v in col.values())
    assert top1['minmax']['FP'] == top1['mse']['FP']
    assert top1['mse+qdrop:iters=3']['FP'] == top1['mse']['FP']
    table = (work_dir / 'transfer.md').read_text()
    assert '| bits | minmax | mse | mse+qdrop:iters=3 |' in table
    assert '| 2w4a |' in table
    log = result.stdout + result.stderr
    # two PTQ settings per calibration, each calibrated on 2 batches of the
    # training images, none for FP; QDrop reconstructs after its MSE ranges
    assert log.count('on 2 calib batches (minmax observer)') == 2
    assert log.count('on 2 calib batches (mse observer)') == 4
    assert log.count('Reconstructed the quantized model with qdrop on 20 '
                     'images') == 2
    assert 'units, 3 iterations' in log

    # FP is the fine-tuned network itself, in mmpretrain's float ResNet.
    finetuned = report['meta']['finetuned']
    assert osp.dirname(finetuned) == str(work_dir / 'finetune')
    assert top1['minmax']['FP'] == pytest.approx(
        float_top1(repo_root, finetuned, tiny_data))


@pytest.mark.slow
def test_qat_transfer_trains_at_its_bits_and_tests_with_its_ranges(
        repo_root, tiny_data, pretrained, tmp_path):
    config = tmp_path / 'qat.py'
    config.write_text(f'_base_ = {osp.join(repo_root, DEMO)!r}\n'
                      'model = dict(backbone=dict(w_bits=4, a_bits=4))\n')
    work_dir = tmp_path / 'qat'
    result = subprocess.run(
        [sys.executable, 'tools/benchmarks/transfer.py', str(config), '--qat',
         '--pretrained', pretrained, '--arch-from-checkpoint', '--work-dir',
         str(work_dir), '--cfg-options', *tiny_options(tiny_data)],
        cwd=repo_root, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((work_dir / 'transfer.json').read_text())
    assert report['settings'] == ['4w4a'] and report['checkpoints'] == ['qat']
    # Calibrated once, before training; the test keeps the trained ranges.
    log = result.stdout + result.stderr
    assert log.count('on 2 calib batches (minmax observer)') == 1
    finetuned = report['meta']['finetuned']
    assert report['top1']['qat']['4w4a'] == pytest.approx(
        float_top1(repo_root, finetuned, tiny_data, bits=(4, 4)))
    assert report['meta']['metric'] == 'accuracy/top1'
    # A metric the test does not produce is named with the ones it does.
    with pytest.raises(ValueError, match=r"'coco/bbox_mAP'.*accuracy/top1"):
        run_qat_transfer(
            str(config), str(tmp_path / 'again'), finetuned=finetuned,
            metric='coco/bbox_mAP', cfg_options={
                f'{loader}.dataset.data_root': tiny_data
                for loader in LOADERS})


def test_adopted_backbone_keeps_the_runs_bits_and_placement(repo_root,
                                                             pretrained):
    # The float SimSiam checkpoint names no placement; the run's config
    # does, and a float checkpoint must not turn it into the legacy one.
    cfg = Config.fromfile(osp.join(repo_root, DEMO))
    cfg.model.backbone.update(w_bits=4, a_bits=2, placement='paper',
                              base_channels=64, stem_channels=64)
    adopt_backbone(cfg, pretrained)
    backbone = cfg.model.backbone
    assert backbone.type == 'QuantResNet_CIFAR'
    assert (backbone.w_bits, backbone.a_bits) == (4, 2)
    assert backbone.placement == 'paper'
    assert (backbone.base_channels, backbone.stem_channels) == (16, 16)
    assert cfg.model.head.in_channels == 128


def test_bad_requests_fail_before_training(repo_root, tmp_path):
    config = osp.join(repo_root, DEMO)
    qat = tmp_path / 'qat.py'
    qat.write_text(f'_base_ = {config!r}\n'
                   'model = dict(backbone=dict(w_bits=4, a_bits=4))\n')
    with pytest.raises(ValueError, match='PTQ starts from float'):
        run_transfer(str(qat), str(tmp_path), ['4/4'])
    with pytest.raises(ValueError, match='QAT needs quantized bits'):
        run_qat_transfer(config, str(tmp_path))
    with pytest.raises(ValueError, match='Unknown observer'):
        run_transfer(config, str(tmp_path), ['4/4'], ['minmax', 'entropy'])
    with pytest.raises(ValueError, match='twice'):
        run_transfer(config, str(tmp_path), ['4/4'], ['mse', 'mse'])
    with pytest.raises(ValueError, match='write OBSERVER[+]METHOD'):
        run_transfer(config, str(tmp_path), ['4/4'], ['mse+'])
    with pytest.raises(ValueError, match="Unknown PTQ method 'gptq'"):
        run_transfer(config, str(tmp_path), ['4/4'], ['mse', 'mse+gptq'])
    with pytest.raises(ValueError, match="'qdrop' takes no argument"):
        run_transfer(config, str(tmp_path), ['4/4'], ['mse+qdrop:iter=3'])
    with pytest.raises(ValueError, match='bit setting'):
        run_transfer(config, str(tmp_path), ['9/x'])
    no_hook = tmp_path / 'no_hook.py'
    no_hook.write_text(f'_base_ = {config!r}\ncustom_hooks = []\n')
    with pytest.raises(ValueError, match='QuantCalibrationHook'):
        run_transfer(str(no_hook), str(tmp_path), ['4/4'])
    assert not (tmp_path / 'finetune').exists()


def test_pretrained_is_a_file_or_a_zoo_name(repo_root, tmp_path):
    result = subprocess.run(
        [sys.executable, 'tools/benchmarks/transfer.py', DEMO, '--pretrained',
         'no-such-model', '--work-dir', str(tmp_path / 'w')],
        cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "transfer: error: 'no-such-model' is neither a checkpoint file nor a "
        'model-zoo name; give an existing file or a name from '
        '`tools/model_zoo.py list`.')
    assert not (tmp_path / 'w').exists()
