"""CIFAR10InMemory: decoding, labels, cache, registry build, bad roots."""
import os
import os.path as osp
import shutil
import tarfile

import numpy as np
import pytest
from PIL import Image

from ssql_mm.datasets import CIFAR10_CLASSES, CIFAR10InMemory
from ssql_mm.datasets.cifar10_memory import load_cifar10_arrays

SUBSET = osp.join(osp.dirname(__file__), '..', '..', 'data', 'cifar10_subset')


@pytest.fixture
def tiny_root(tmp_path):
    """Three real images of two classes in train/ and test/ folders."""
    for split in ('train', 'test'):
        for cls in ('bird', 'airplane'):
            os.makedirs(tmp_path / split / cls)
            for name in ('0000.jpg', '0001.jpg', '0002.jpg'):
                shutil.copy(osp.join(SUBSET, 'test', cls, name),
                            tmp_path / split / cls / name)
    return tmp_path


def _expected(root, split):
    images, labels = [], []
    for cls in ('airplane', 'bird'):  # sorted paths
        for name in ('0000.jpg', '0001.jpg', '0002.jpg'):
            with Image.open(root / split / cls / name) as img:
                images.append(np.asarray(img.convert('RGB')))
            labels.append(CIFAR10_CLASSES.index(cls))
    return np.stack(images), np.array(labels)


def test_folder_and_archive_decode_to_the_same_arrays(tiny_root, tmp_path):
    images, labels = load_cifar10_arrays(str(tiny_root), 'train')
    exp_images, exp_labels = _expected(tiny_root, 'train')
    assert images.dtype == np.uint8 and images.shape == (6, 32, 32, 3)
    np.testing.assert_array_equal(images, exp_images)
    np.testing.assert_array_equal(labels, exp_labels)  # airplane=0, bird=2

    archive_root = tmp_path / 'archives'
    archive_root.mkdir()
    with tarfile.open(archive_root / 'train.tar.gz', 'w:gz') as tar:
        tar.add(tiny_root / 'train', arcname='cifar10/train')
    a_images, a_labels = load_cifar10_arrays(str(archive_root), 'train')
    np.testing.assert_array_equal(a_images, images)
    np.testing.assert_array_equal(a_labels, labels)


def test_cache_is_written_once_and_keyed_by_source(tiny_root, tmp_path):
    cache = tmp_path / 'cache'
    first = load_cifar10_arrays(str(tiny_root), 'train', str(cache))
    files = sorted(os.listdir(cache))
    assert len(files) == 1 and files[0].startswith('cifar10_train_')
    # A second root with other images must not be served from that cache.
    other = tmp_path / 'other'
    shutil.copytree(tiny_root, other)
    shutil.rmtree(other / 'train' / 'bird')
    second = load_cifar10_arrays(str(other), 'train', str(cache))
    assert len(second[0]) == 3 and len(os.listdir(cache)) == 2
    # The cached arrays are what a fresh decode gives.
    again = load_cifar10_arrays(str(tiny_root), 'train', str(cache))
    np.testing.assert_array_equal(again[0], first[0])
    assert not [f for f in os.listdir(cache) if 'partial' in f]


def test_registered_dataset_items(tiny_root):
    from mmpretrain.registry import DATASETS
    ds = DATASETS.build(dict(type='CIFAR10InMemory', data_root=str(tiny_root),
                             split='test', indices=4))
    assert isinstance(ds, CIFAR10InMemory) and len(ds) == 4
    item = ds[3]
    exp_images, exp_labels = _expected(tiny_root, 'test')
    assert item['inputs'].shape == (3, 32, 32)
    np.testing.assert_array_equal(item['inputs'].permute(1, 2, 0).numpy(),
                                  exp_images[3])
    assert int(item['data_samples'].gt_label) == exp_labels[3]
    assert ds.metainfo['classes'] == CIFAR10_CLASSES


def test_missing_split_and_foreign_class_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="'train.tar.gz'"):
        load_cifar10_arrays(str(tmp_path), 'train')
    os.makedirs(tmp_path / 'test' / 'unicorn')
    shutil.copy(osp.join(SUBSET, 'test', 'cat', '0000.jpg'),
                tmp_path / 'test' / 'unicorn' / '0000.jpg')
    with pytest.raises(ValueError, match='unicorn'):
        load_cifar10_arrays(str(tmp_path), 'test')
    with pytest.raises(ValueError, match='split'):
        load_cifar10_arrays(str(tmp_path), 'val')


def test_per_class_range_keeps_the_ranked_images_of_every_class(tiny_root):
    images, _ = _expected(tiny_root, 'train')
    later = CIFAR10InMemory(str(tiny_root), 'train', per_class_range=(1, 3))
    first = CIFAR10InMemory(str(tiny_root), 'train', per_class_range=(0, 1))
    kept = [later.get_data_info(i)['img_index'] for i in range(len(later))]
    assert kept == [1, 2, 4, 5]  # per class (airplane 0-2, bird 3-5)
    assert [first.get_data_info(i)['img_index']
            for i in range(len(first))] == [0, 3]
    np.testing.assert_array_equal(later[0]['inputs'].numpy().transpose(1, 2, 0),
                                  images[1])
    assert [later.get_data_info(i)['gt_label'] for i in range(4)] == [0, 0, 2, 2]


@pytest.mark.parametrize('bad', [(2, 1), (-1, 2), (0, ), (0.5, 2)])
def test_per_class_range_rejects_a_bad_range(tiny_root, bad):
    with pytest.raises(ValueError, match='per_class_range must be'):
        CIFAR10InMemory(str(tiny_root), 'train', per_class_range=bad)


def test_per_class_range_past_a_class_end_names_the_class(tiny_root):
    with pytest.raises(ValueError, match="'airplane'.*only 3 images"):
        CIFAR10InMemory(str(tiny_root), 'train', per_class_range=(0, 4))
