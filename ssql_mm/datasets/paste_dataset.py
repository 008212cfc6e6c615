"""A small detection + segmentation dataset made of real CIFAR-10 images.

Real photographs (CIFAR-10 test images, one class folder each) are resized
and pasted, through an elliptical mask, onto smooth random backgrounds at
known positions and sizes. Because every pixel's origin is known, the
annotations are exact:

- ``annotations/{split}.json``: COCO detection with boxes and instance
  masks (RLE), category ids ``1..K`` in class order;
- ``seg/{split}/<name>.png``: semantic label maps, 0 = background and
  ``k`` = the k-th class (so the segmentation classes are
  ``('background', *classes)``);
- ``images/{split}/<name>.jpg``: the images.

Source images of the train and val splits are disjoint, so the val split
measures recognition of unseen photographs.
"""
import json
import os
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

__all__ = ['PasteSpec', 'build_paste_dataset', 'paste_metainfo']


@dataclass
class PasteSpec:
    """How the images are composed.

    Args:
        image_size (int): Side of the square canvas. Defaults to 96.
        min_objects (int): Fewest objects per image. Defaults to 1.
        max_objects (int): Most objects per image. Defaults to 3.
        min_size (int): Smallest pasted side in pixels. Defaults to 28.
        max_size (int): Largest pasted side in pixels. Defaults to 44.
        max_tries (int): Placement attempts per object before it is left
            out (objects never overlap). Defaults to 50.
    """
    image_size: int = 96
    min_objects: int = 1
    max_objects: int = 3
    min_size: int = 28
    max_size: int = 44
    max_tries: int = 50

    def check(self) -> None:
        """Raise a ValueError naming the field to fix."""
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError('Need 1 <= min_objects <= max_objects, got '
                             f'{self.min_objects}, {self.max_objects}.')
        if not 4 <= self.min_size <= self.max_size <= self.image_size:
            raise ValueError(
                'Need 4 <= min_size <= max_size <= image_size, got '
                f'{self.min_size}, {self.max_size}, {self.image_size}.')


def _list_sources(src_dir: str, classes: Optional[Sequence[str]]
                  ) -> Tuple[List[str], Dict[str, List[str]]]:
    if not osp.isdir(src_dir):
        raise FileNotFoundError(
            f'{src_dir} is not a folder. Pass a folder of class sub-folders '
            'of images, e.g. data/cifar10_subset/test.')
    found = sorted(d for d in os.listdir(src_dir)
                   if osp.isdir(osp.join(src_dir, d)))
    classes = list(classes) if classes else found
    missing = [c for c in classes if c not in found]
    if missing:
        raise ValueError(f'Class folder(s) {missing} not found in {src_dir}; '
                         f'available: {found}.')
    files = {}
    for name in classes:
        folder = osp.join(src_dir, name)
        files[name] = sorted(
            osp.join(folder, f) for f in os.listdir(folder)
            if f.lower().endswith(('.jpg', '.jpeg', '.png')))
        if len(files[name]) < 2:
            raise ValueError(f'{folder} needs at least 2 images (one for '
                             'each split).')
    return classes, files


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth colour field with mild noise, uint8 HxWx3."""
    coarse = rng.uniform(40, 215, size=(4, 4, 3)).astype(np.uint8)
    field = np.asarray(
        Image.fromarray(coarse).resize((size, size), Image.BICUBIC),
        dtype=np.float32)
    field += rng.normal(0, 6, size=field.shape)
    return np.clip(field, 0, 255).astype(np.uint8)


def _ellipse(h: int, w: int) -> np.ndarray:
    ys = (np.arange(h) + 0.5 - h / 2) / (h / 2)
    xs = (np.arange(w) + 0.5 - w / 2) / (w / 2)
    return (ys[:, None]**2 + xs[None, :]**2) <= 1.0


def _place(rng: np.random.Generator, spec: PasteSpec,
           taken: List[Tuple[int, int, int, int]]
           ) -> Optional[Tuple[int, int, int, int]]:
    for _ in range(spec.max_tries):
        w = int(rng.integers(spec.min_size, spec.max_size + 1))
        h = int(np.clip(round(w * rng.uniform(0.8, 1.25)), spec.min_size,
                        spec.max_size))
        x = int(rng.integers(0, spec.image_size - w + 1))
        y = int(rng.integers(0, spec.image_size - h + 1))
        if all(x + w <= tx or tx + tw <= x or y + h <= ty or ty + th <= y
               for tx, ty, tw, th in taken):
            return x, y, w, h
    return None


def _compose(rng: np.random.Generator, spec: PasteSpec,
             sources: List[Tuple[int, str]]):
    canvas = _background(rng, spec.image_size)
    label = np.zeros((spec.image_size, spec.image_size), np.uint8)
    objects, taken = [], []
    for cat, path in sources:
        box = _place(rng, spec, taken)
        if box is None:
            continue
        taken.append(box)
        x, y, w, h = box
        patch = np.asarray(
            Image.open(path).convert('RGB').resize((w, h), Image.BILINEAR))
        inside = _ellipse(h, w)
        canvas[y:y + h, x:x + w][inside] = patch[inside]
        label[y:y + h, x:x + w][inside] = cat + 1
        full = np.zeros_like(label)
        full[y:y + h, x:x + w] = inside
        objects.append((cat, full))
    return canvas, label, objects


def _coco_annotation(ann_id: int, image_id: int, cat: int,
                     mask: np.ndarray) -> dict:
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle['counts'] = rle['counts'].decode('ascii')
    return dict(
        id=ann_id,
        image_id=image_id,
        category_id=cat + 1,
        bbox=[x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1],
        area=int(mask.sum()),
        segmentation=rle,
        iscrowd=0)


def paste_metainfo(classes: Sequence[str]) -> dict:
    """``metainfo`` for mmdet's CocoDataset and mmseg's BaseSegDataset.

    Args:
        classes (Sequence[str]): The object classes, in category-id order.

    Returns:
        dict: ``det`` and ``seg`` metainfo dicts.
    """
    return dict(
        det=dict(classes=tuple(classes)),
        seg=dict(classes=('background', *classes)))


def build_paste_dataset(src_dir: str,
                        out_dir: str,
                        num_train: int = 400,
                        num_val: int = 100,
                        classes: Optional[Sequence[str]] = None,
                        spec: Optional[PasteSpec] = None,
                        seed: int = 0) -> dict:
    """Compose the dataset and write images, COCO json and label maps.

    Args:
        src_dir (str): Folder of class sub-folders of real images.
        out_dir (str): Output folder (created).
        num_train (int): Training images. Defaults to 400.
        num_val (int): Validation images. Defaults to 100.
        classes (Sequence[str], optional): Class folders to use, in order.
            Defaults to None (every sub-folder, sorted).
        spec (PasteSpec, optional): Composition settings. Defaults to None
            (``PasteSpec()``).
        seed (int): Random seed; the output is a function of the
            arguments. Defaults to 0.

    Returns:
        dict: ``classes`` and, per split, the number of images and objects.
    """
    spec = spec or PasteSpec()
    spec.check()
    if num_train < 1 or num_val < 1:
        raise ValueError('num_train and num_val must be >= 1, got '
                         f'{num_train}, {num_val}.')
    classes, files = _list_sources(src_dir, classes)
    rng = np.random.default_rng(seed)
    pools = {}
    for cat, name in enumerate(classes):
        order = list(rng.permutation(len(files[name])))
        half = len(order) // 2
        pools[('train', cat)] = [files[name][i] for i in order[half:]]
        pools[('val', cat)] = [files[name][i] for i in order[:half]]
    summary: dict = dict(classes=list(classes))
    for split, count in (('train', num_train), ('val', num_val)):
        for sub in ('images', 'seg'):
            os.makedirs(osp.join(out_dir, sub, split), exist_ok=True)
        images, annotations = [], []
        for index in range(count):
            n = int(rng.integers(spec.min_objects, spec.max_objects + 1))
            cats = rng.integers(0, len(classes), size=n)
            sources = [(int(c), pools[(split, int(c))][int(
                rng.integers(len(pools[(split, int(c))])))]) for c in cats]
            canvas, label, objects = _compose(rng, spec, sources)
            name = f'{index:05d}'
            Image.fromarray(canvas).save(
                osp.join(out_dir, 'images', split, name + '.jpg'), quality=95)
            Image.fromarray(label).save(
                osp.join(out_dir, 'seg', split, name + '.png'))
            image_id = index + 1
            images.append(dict(id=image_id, file_name=name + '.jpg',
                               height=spec.image_size, width=spec.image_size))
            for cat, mask in objects:
                annotations.append(_coco_annotation(
                    len(annotations) + 1, image_id, cat, mask))
        coco = dict(
            images=images,
            annotations=annotations,
            categories=[dict(id=i + 1, name=c) for i, c in enumerate(classes)])
        os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
        with open(osp.join(out_dir, 'annotations', split + '.json'), 'w') as f:
            json.dump(coco, f)
        summary[split] = dict(images=count, objects=len(annotations))
    return summary
