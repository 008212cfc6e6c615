"""Every transfer config builds its model and datasets on tiny synthetic
folders in each dataset's on-disk format (nothing is downloaded)."""
import glob
import os.path as osp
import pickle

import mat4py
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import DATASETS, MODELS
from PIL import Image

from ssql_mm.models.backbones import QuantBackboneMixin
from ssql_mm.quantization import calibrate

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(ROOT, 'configs', 'benchmarks', 'classification')
CONFIGS = sorted(glob.glob(osp.join(CONFIG_DIR, '*.py')))
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader',
           'calib_dataloader')
PER_SPLIT = 3  # images per split


def _jpeg(path, seed, size=(40, 52)):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)


def _lines(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('\n'.join(lines) + '\n')


def make_fgvc_aircraft(root):
    variants = ['707-320', 'A380', 'Tu-154']
    for split in ('trainval', 'test'):
        ids = [f'{split}{i:03d}' for i in range(PER_SPLIT)]
        for i, name in enumerate(ids):
            _jpeg(root / 'data' / 'images' / f'{name}.jpg', i)
        _lines(root / 'data' / f'images_variant_{split}.txt',
               [f'{n} {variants[i]}' for i, n in enumerate(ids)])


def make_caltech101(root):
    classes = ['Faces', 'airplanes', 'yin_yang']
    for split in ('train', 'test'):
        lines = []
        for i, name in enumerate(classes):
            file = f'{name}/{split}_{i:04d}.jpg'
            _jpeg(root / '101_ObjectCategories' / file, i)
            lines.append(f'{file} {i + 1}')
        _lines(root / 'meta' / f'{split}.txt', lines)


def make_dtd(root):
    names, labels, sets = [], [], []
    for part in (1, 2, 3):  # train, val, test
        for label, name in ((1, 'banded'), (47, 'zigzagged')):
            file = f'{name}/{name}_{part:04d}.jpg'
            _jpeg(root / 'images' / file, part)
            names.append(file)
            labels.append(label)
            sets.append(part)
    (root / 'imdb').mkdir(parents=True)
    mat4py.savemat(str(root / 'imdb' / 'imdb.mat'),
                   dict(images=dict(name=names, **{'class': labels},
                                    set=sets)))


def make_flowers102(root):
    for i in range(1, 10):
        _jpeg(root / 'jpg' / f'image_{i:05d}.jpg', i)
    mat4py.savemat(str(root / 'imagelabels.mat'),
                   dict(labels=[1, 2, 102, 1, 2, 102, 1, 2, 102]))
    mat4py.savemat(str(root / 'setid.mat'),
                   dict(trnid=[1, 2, 3], valid=[4, 5, 6], tstid=[7, 8, 9]))


def make_food101(root):
    classes = ['apple_pie', 'waffles', 'tiramisu']
    for split in ('train', 'test'):
        lines = []
        for i, name in enumerate(classes):
            _jpeg(root / 'images' / name / f'{split}{i}.jpg', i)
            lines.append(f'{name}/{split}{i}')
        _lines(root / 'meta' / f'{split}.txt', lines)


def make_oxford_iiit_pet(root):
    for split in ('trainval', 'test'):
        lines = []
        for i, (name, class_id) in enumerate(
                (('Abyssinian', 1), ('pug', 26), ('yorkshire_terrier', 37))):
            _jpeg(root / 'images' / f'{name}_{split}.jpg', i)
            lines.append(f'{name}_{split} {class_id} 1 1')
        _lines(root / 'annotations' / f'{split}.txt', lines)


def _cifar_pickle(path, label_key, num_classes, seed):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {'data': rng.integers(0, 255, (PER_SPLIT, 3072), dtype=np.uint8),
             label_key: [0, 1, num_classes - 1]}
    path.write_bytes(pickle.dumps(entry))


def make_cifar10(root):
    folder = root / 'cifar-10-batches-py'
    for i, name in enumerate([f'data_batch_{k}' for k in range(1, 6)] +
                             ['test_batch']):
        _cifar_pickle(folder / name, 'labels', 10, i)
    (folder / 'batches.meta').write_bytes(
        pickle.dumps({'label_names': [f'c{k}' for k in range(10)]}))


def make_cifar100(root):
    folder = root / 'cifar-100-python'
    for i, name in enumerate(('train', 'test')):
        _cifar_pickle(folder / name, 'fine_labels', 100, i)
    (folder / 'meta').write_bytes(
        pickle.dumps({'fine_label_names': [f'c{k}' for k in range(100)]}))


def make_cifar10_subset(root):
    for split in ('train', 'test'):
        for i, name in enumerate(('airplane', 'cat', 'truck')):
            _jpeg(root / split / name / f'{i:04d}.jpg', i, (32, 32))


def make_cifar10_folders(root):
    """Class folders of 32 x 32 JPEGs, three per class and split."""
    for split in ('train', 'test'):
        for i, name in enumerate(('airplane', 'cat', 'truck')):
            for k in range(3):
                _jpeg(root / split / name / f'{k:04d}.jpg', 3 * i + k,
                      (32, 32))


MAKERS = {
    'fgvc_aircraft': make_fgvc_aircraft, 'caltech101': make_caltech101,
    'dtd': make_dtd, 'flowers102': make_flowers102, 'food101': make_food101,
    'oxford_iiit_pet': make_oxford_iiit_pet, 'cifar100': make_cifar100,
    'cifar10-subset': make_cifar10_subset, 'cifar10': make_cifar10,
    'cifar10-5k': make_cifar10_folders,
}
SMALL_IMAGES = ('cifar10-subset', 'cifar10-5k')


def _dataset_key(path):
    stem = osp.splitext(osp.basename(path))[0]
    return stem.rsplit('_', 1)[-1] if stem.endswith('subset') else next(
        key for key in MAKERS if stem.endswith('_' + key))


def test_every_dataset_has_configs():
    keys = sorted({_dataset_key(p) for p in CONFIGS})
    assert keys == sorted(MAKERS)
    assert len(CONFIGS) == 8 * 3 + 1 + 2


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.basename(p) for p in CONFIGS])
def test_config_builds_model_and_datasets(path, tmp_path, monkeypatch):
    # Synthetic CIFAR pickles cannot match the real files' checksums.
    monkeypatch.setattr('mmpretrain.datasets.cifar.check_md5',
                        lambda *args, **kwargs: True)
    key = _dataset_key(path)
    MAKERS[key](tmp_path)
    cfg = Config.fromfile(path)

    model = MODELS.build(cfg.model)
    assert isinstance(model.backbone, QuantBackboneMixin)
    hooks = [h for h in cfg.custom_hooks if h.type == 'QuantCalibrationHook']
    assert len(hooks) == 1 and hooks[0].dataloader == 'calib'
    assert hooks[0].num_batches * cfg.calib_dataloader.batch_size == 1000
    num_classes = cfg.model.head.num_classes
    assert cfg.data_preprocessor.num_classes == num_classes

    for loader in LOADERS:
        dataset_cfg = cfg[loader].dataset
        dataset_cfg.data_root = str(tmp_path)
        if 'per_class_range' in dataset_cfg:  # the labelled set, scaled down
            assert dataset_cfg.per_class_range == (1000, 1500)
            dataset_cfg.update(per_class_range=(1, 3),
                               cache_dir=str(tmp_path / 'cache'))
        elif dataset_cfg.get('cache_dir'):
            dataset_cfg.cache_dir = str(tmp_path / 'cache')
        dataset = DATASETS.build(dataset_cfg)
        assert len(dataset) >= 2, loader
        sample = dataset[0]
        assert sample['inputs'].dtype == torch.uint8
        size = 32 if key in SMALL_IMAGES else 224
        assert tuple(sample['inputs'].shape[1:]) == (size, size), loader
        labels = [dataset.get_data_info(i)['gt_label']
                  for i in range(len(dataset))]
        assert all(0 <= int(label) < num_classes for label in labels)
        classes = dataset.metainfo.get('classes')
        if classes is not None and key not in SMALL_IMAGES[:1]:
            assert len(classes) == num_classes, loader
    assert cfg.calib_dataloader.dataset.pipeline == cfg.test_dataloader.dataset.pipeline
    split = cfg.train_dataloader.dataset.get('split')
    assert cfg.calib_dataloader.dataset.get('split') == split

    if '-qat-' in path and key != 'dtd':
        return  # the same network as the float twin (tested below) at 4/4
    # The network takes the pipeline's images end to end.
    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=[sample['inputs']],
                                            data_samples=None), False)
        if cfg.model.backbone.w_bits:
            calibrate(model, [data['inputs']],
                      forward=lambda m, x: m(x, mode='tensor'),
                      observer=hooks[0].observer)
        logits = model(data['inputs'], mode='tensor')
    assert logits.shape == (1, num_classes)


@pytest.mark.parametrize('path', [p for p in CONFIGS if '-qat-' in p],
                         ids=lambda p: osp.basename(p))
def test_qat_configs_differ_from_their_float_twin_only_in_bits(path):
    qat = Config.fromfile(path)
    assert (qat.model.backbone.w_bits, qat.model.backbone.a_bits) == (4, 4)
    twin = Config.fromfile(path.replace('-qat-4w4a', ''))
    qat.model.backbone.w_bits = qat.model.backbone.a_bits = 0
    assert qat.to_dict() == twin.to_dict()


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.basename(p) for p in CONFIGS])
def test_recipe(path):
    cfg = Config.fromfile(path)
    backbone = cfg.model.backbone
    if '-linear-' in path:
        assert backbone.frozen_stages == 4 and backbone.norm_eval
        assert cfg.optim_wrapper.optimizer.lr == 30.
        assert cfg.param_scheduler.milestones == [60, 80]
        assert cfg.train_cfg.max_epochs == 100
    elif path.endswith('_cifar10-5k.py'):
        assert backbone.get('frozen_stages', -1) == -1
        assert cfg.param_scheduler.milestones == [9, 12]
        assert cfg.train_cfg.max_epochs == 15
        assert cfg.optim_wrapper.optimizer.lr == 0.05
        assert cfg.optim_wrapper.optimizer.weight_decay == 5e-4
        assert backbone.placement == 'integer' and backbone.init_cfg is None
    elif 'subset' not in path:
        assert backbone.get('frozen_stages', -1) == -1
        assert cfg.param_scheduler.milestones == [30, 40]
        assert cfg.train_cfg.max_epochs == 50
        lr = 0.01 if 'cifar' in path else 0.001
        assert cfg.optim_wrapper.optimizer.lr == lr
        assert cfg.optim_wrapper.optimizer.weight_decay == 1e-4
