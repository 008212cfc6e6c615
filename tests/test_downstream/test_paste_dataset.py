"""The paste dataset: exact boxes, masks and label maps from real images."""
import json
import os.path as osp

import numpy as np
import pytest
from downstream_utils import REPO
from PIL import Image
from pycocotools import mask as mask_utils

from ssql_mm.datasets.paste_dataset import PasteSpec, build_paste_dataset

SRC = osp.join(REPO, 'data', 'cifar10_subset', 'test')


@pytest.mark.parametrize('split', ['train', 'val'])
def test_annotations_agree_with_label_maps(paste_root, split):
    with open(osp.join(paste_root, 'annotations', f'{split}.json')) as f:
        coco = json.load(f)
    assert [c['name'] for c in coco['categories']][:2] == [
        'airplane', 'automobile']
    by_image = {}
    for ann in coco['annotations']:
        by_image.setdefault(ann['image_id'], []).append(ann)
    assert len(by_image) == len(coco['images'])  # every image has objects
    for image in coco['images']:
        name = osp.splitext(image['file_name'])[0]
        label = np.asarray(Image.open(
            osp.join(paste_root, 'seg', split, name + '.png')))
        assert Image.open(osp.join(paste_root, 'images', split,
                                   image['file_name'])).size == (96, 96)
        union = np.zeros_like(label, dtype=bool)
        for ann in by_image[image['id']]:
            mask = mask_utils.decode(ann['segmentation']).astype(bool)
            assert not (union & mask).any()  # objects never overlap
            union |= mask
            assert (label[mask] == ann['category_id']).all()
            ys, xs = np.nonzero(mask)
            x, y, w, h = ann['bbox']
            assert (x, y, x + w - 1, y + h - 1) == (
                xs.min(), ys.min(), xs.max(), ys.max())
            assert 28 <= w <= 44 and ann['area'] == mask.sum()
        assert (label[~union] == 0).all()


def test_output_is_a_function_of_the_seed(tmp_path):
    first = build_paste_dataset(SRC, str(tmp_path / 'a'), 3, 2, seed=5,
                                classes=['cat', 'dog'])
    second = build_paste_dataset(SRC, str(tmp_path / 'b'), 3, 2, seed=5,
                                 classes=['cat', 'dog'])
    assert first == second and first['classes'] == ['cat', 'dog']
    for sub in ('images/val/00001.jpg', 'seg/train/00002.png'):
        a = np.asarray(Image.open(tmp_path / 'a' / sub))
        assert np.array_equal(a, np.asarray(Image.open(tmp_path / 'b' / sub)))


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match='min_size <= max_size'):
        build_paste_dataset(SRC, str(tmp_path), spec=PasteSpec(min_size=50))
    with pytest.raises(ValueError, match=r"\['zebra'\] not found"):
        build_paste_dataset(SRC, str(tmp_path), classes=['zebra'])
    with pytest.raises(FileNotFoundError, match='class sub-folders'):
        build_paste_dataset(str(tmp_path / 'nothing'), str(tmp_path))
