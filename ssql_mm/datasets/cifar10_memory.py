"""CIFAR-10 decoded once into a uint8 array and served from memory."""
import hashlib
import io
import os
import os.path as osp
import tarfile
from typing import List, Optional, Sequence, Tuple

import numpy as np
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS
from PIL import Image

from .cifar10_folders import CIFAR10_CLASSES, SPLITS

__all__ = ['CIFAR10InMemory', 'load_cifar10_arrays']

_JPEG = ('.jpg', '.jpeg', '.png')


def _decode_image(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert('RGB'), dtype=np.uint8)


def _read_archive(path: str) -> Tuple[List[str], List[bytes]]:
    names, blobs = [], []
    with tarfile.open(path) as tar:
        members = sorted((m for m in tar.getmembers()
                          if m.isfile() and m.name.lower().endswith(_JPEG)),
                         key=lambda m: m.name)
        for member in members:
            with tar.extractfile(member) as f:
                names.append(member.name)
                blobs.append(f.read())
    return names, blobs


def _read_folder(path: str) -> Tuple[List[str], List[bytes]]:
    names, blobs = [], []
    for root, _, files in sorted(os.walk(path)):
        for file in sorted(files):
            if file.lower().endswith(_JPEG):
                names.append(osp.join(root, file))
                with open(names[-1], 'rb') as f:
                    blobs.append(f.read())
    return names, blobs


def _source(data_root: str, split: str) -> str:
    folder = osp.join(data_root, split)
    archive = osp.join(data_root, f'{split}.tar.gz')
    if osp.isdir(folder):
        return folder
    if osp.isfile(archive):
        return archive
    raise FileNotFoundError(
        f'CIFAR-10 {split} split not found in {data_root}: expected '
        f"'{split}/<class>/*.jpg' or '{split}.tar.gz'. Set data_root "
        'to the folder that holds one of them.')


def _cache_key(source: str) -> str:
    """Tells sources apart: their real path, and size and mtime of a file."""
    stat = os.stat(source)
    ident = osp.realpath(source)
    if osp.isfile(source):
        ident += f':{stat.st_size}:{stat.st_mtime_ns}'
    return hashlib.sha256(ident.encode()).hexdigest()[:12]


def _decode_split(source: str) -> Tuple[np.ndarray, np.ndarray]:
    if osp.isdir(source):
        names, blobs = _read_folder(source)
    else:
        names, blobs = _read_archive(source)
    labels = []
    for name in names:
        cls_name = name.replace(os.sep, '/').split('/')[-2]
        if cls_name not in CIFAR10_CLASSES:
            raise ValueError(f'{name}: class folder {cls_name!r} is not a '
                             f'CIFAR-10 class {CIFAR10_CLASSES}.')
        labels.append(CIFAR10_CLASSES.index(cls_name))
    if not names:
        raise ValueError(f'No image in {source}.')
    images = np.stack([_decode_image(b) for b in blobs])
    return images, np.asarray(labels, dtype=np.int64)


def load_cifar10_arrays(data_root: str,
                        split: str = 'train',
                        cache_dir: Optional[str] = None
                        ) -> Tuple[np.ndarray, np.ndarray]:
    """Decode a CIFAR-10 split into ``(N, 32, 32, 3)`` uint8 RGB and labels.

    Images are in sorted file-name order, labels are indices into
    ``CIFAR10_CLASSES``. With ``cache_dir`` the decoded arrays are stored as
    ``cifar10_<split>_<key>.npz``, where the key tells sources apart (written
    to a temporary name, then renamed) and read from there next time.

    Args:
        data_root (str): Folder holding ``<split>/<class>/*.jpg`` or
            ``<split>.tar.gz``.
        split (str): ``'train'`` or ``'test'``. Defaults to ``'train'``.
        cache_dir (str, optional): Where to keep the decoded arrays.
            Defaults to None (decode every time).

    Returns:
        tuple[np.ndarray, np.ndarray]: Images and labels.
    """
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}.')
    source = _source(data_root, split)
    cache = (osp.join(cache_dir, f'cifar10_{split}_{_cache_key(source)}.npz')
             if cache_dir else None)
    if cache and osp.isfile(cache):
        with np.load(cache) as arrays:
            return arrays['images'], arrays['labels']
    images, labels = _decode_split(source)
    if cache:
        os.makedirs(cache_dir, exist_ok=True)
        tmp = f'{cache}.partial-{os.getpid()}.npz'
        np.savez(tmp, images=images, labels=labels)
        os.replace(tmp, cache)
    return images, labels


def _check_range(per_class_range: Optional[Sequence[int]]
                 ) -> Optional[Tuple[int, int]]:
    if per_class_range is None:
        return None
    if (len(per_class_range) != 2
            or not all(isinstance(v, int) for v in per_class_range)
            or not 0 <= per_class_range[0] < per_class_range[1]):
        raise ValueError(
            f'per_class_range must be (start, stop) with 0 <= start < stop, '
            f'got {per_class_range!r}.')
    return int(per_class_range[0]), int(per_class_range[1])


@DATASETS.register_module()
class CIFAR10InMemory(BaseDataset):
    """CIFAR-10 from JPEG class folders or their archives, held in memory.

    The split is decoded once (and cached with ``cache_dir``) into one uint8
    array; each item is ``dict(img=HxWx3 uint8 RGB, gt_label=int)`` passed
    through ``pipeline``. With :class:`BatchViewPreprocessor` the pipeline
    is only ``PackInputs`` and all augmentation runs batched in the model's
    data preprocessor.

    Args:
        data_root (str): Folder holding ``<split>/<class>/*.jpg`` or
            ``<split>.tar.gz``.
        split (str): ``'train'`` or ``'test'``. Defaults to ``'train'``.
        pipeline (Sequence[dict]): Transforms of each item.
            Defaults to ``[dict(type='PackInputs')]``.
        indices (int | Sequence[int], optional): Keep only these items (an
            int keeps the first N). Defaults to None (all).
        cache_dir (str, optional): Where decoded arrays are kept.
            Defaults to None.
        per_class_range (tuple[int, int], optional): Keep, in every class,
            the images of rank ``start <= rank < stop`` in file-name order
            (the model zoo's kNN bank is ranks 0-999, so ``(1000, 1500)``
            is a labelled set disjoint from it). Defaults to None (all).
        **kwargs: Other arguments of mmpretrain's ``BaseDataset``.
    """

    METAINFO = {'classes': CIFAR10_CLASSES}

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 pipeline: Sequence = (dict(type='PackInputs'), ),
                 indices=None,
                 cache_dir: Optional[str] = None,
                 per_class_range: Optional[Tuple[int, int]] = None,
                 **kwargs) -> None:
        self.split = split
        self.cache_dir = cache_dir
        self.per_class_range = _check_range(per_class_range)
        self.images: Optional[np.ndarray] = None
        kwargs.setdefault('serialize_data', False)
        super().__init__(
            ann_file='',
            data_root=data_root,
            pipeline=list(pipeline),
            indices=indices,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        """Decode the split and list one ``dict(img_index, gt_label)`` each."""
        self.images, labels = load_cifar10_arrays(self.data_root, self.split,
                                                  self.cache_dir)
        keep = np.ones(len(labels), dtype=bool)
        if self.per_class_range is not None:
            start, stop = self.per_class_range
            rank = np.zeros(len(labels), dtype=np.int64)
            for label in np.unique(labels):
                where = np.flatnonzero(labels == label)
                if len(where) < stop:
                    raise ValueError(
                        f'per_class_range={self.per_class_range}: class '
                        f'{CIFAR10_CLASSES[label]!r} of the {self.split} split '
                        f'has only {len(where)} images; lower the stop.')
                rank[where] = np.arange(len(where))
            keep = (rank >= start) & (rank < stop)
        return [dict(img_index=int(i), gt_label=int(labels[i]))
                for i in np.flatnonzero(keep)]

    def get_data_info(self, idx: int) -> dict:
        """Item ``idx`` with its image array."""
        info = super().get_data_info(idx)
        info['img'] = self.images[info['img_index']]
        info['img_shape'] = info['ori_shape'] = info['img'].shape[:2]
        return info
