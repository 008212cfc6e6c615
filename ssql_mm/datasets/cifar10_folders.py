"""CIFAR-10 stored as JPEG class folders: extraction and small subsets.

The archives hold ``cifar10/{train,test}/<class>/<nnnn>.jpg`` (ImageNet-style
folders that mmpretrain's ``CustomDataset`` reads as they are).
"""
import os
import os.path as osp
import tarfile
from typing import Dict, Optional

__all__ = ['CIFAR10_CLASSES', 'extract_cifar10', 'make_cifar10_subset']

CIFAR10_CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog',
                   'frog', 'horse', 'ship', 'truck')
SPLITS = ('train', 'test')


def _archive(archive_dir: str, split: str) -> str:
    path = osp.join(archive_dir, f'{split}.tar.gz')
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'CIFAR-10 archive {path} not found. Pass the folder that holds '
            "'train.tar.gz' and 'test.tar.gz' (JPEG class folders).")
    return path


def extract_cifar10(archive_dir: str, cache_dir: str) -> str:
    """Extract the CIFAR-10 archives once into ``cache_dir``.

    Extraction goes to a temporary folder renamed into place when complete,
    so an interrupted run never leaves a half-extracted split behind.

    Args:
        archive_dir (str): Folder with ``train.tar.gz`` and ``test.tar.gz``.
        cache_dir (str): Where to extract.

    Returns:
        str: The dataset root, holding ``train/`` and ``test/``.
    """
    root = osp.join(cache_dir, 'cifar10')
    for split in SPLITS:
        target = osp.join(root, split)
        if osp.isdir(target):
            continue
        tmp = osp.join(cache_dir, f'.{split}.partial-{os.getpid()}')
        with tarfile.open(_archive(archive_dir, split)) as tar:
            tar.extractall(tmp, filter='data')
        os.makedirs(root, exist_ok=True)
        os.replace(osp.join(tmp, 'cifar10', split), target)
        os.rmdir(osp.join(tmp, 'cifar10'))
        os.rmdir(tmp)
    return root


def make_cifar10_subset(archive_dir: str,
                        out_dir: str,
                        per_class: Optional[Dict[str, int]] = None) -> Dict[str, int]:
    """Copy the first N images of every class of each split into ``out_dir``.

    Reads straight from the archives (no full extraction); the choice is
    deterministic (sorted file names).

    Args:
        archive_dir (str): Folder with ``train.tar.gz`` and ``test.tar.gz``.
        out_dir (str): Output root; gets ``train/<class>/`` and ``test/<class>/``.
        per_class (dict[str, int], optional): Images per class for each split.
            Defaults to ``{'train': 300, 'test': 100}``.

    Returns:
        dict[str, int]: Number of images written per split.
    """
    per_class = per_class or {'train': 300, 'test': 100}
    written = {}
    for split, count in per_class.items():
        if split not in SPLITS or count < 1:
            raise ValueError(f'per_class must map {SPLITS} to counts >= 1, '
                             f'got {per_class}.')
        with tarfile.open(_archive(archive_dir, split)) as tar:
            members = sorted((m for m in tar.getmembers() if m.isfile()
                              and m.name.endswith('.jpg')),
                             key=lambda m: m.name)
            taken = dict.fromkeys(CIFAR10_CLASSES, 0)
            for member in members:
                cls_name = member.name.split('/')[-2]
                if taken.get(cls_name, count) >= count:
                    continue
                dst = osp.join(out_dir, split, cls_name, osp.basename(member.name))
                os.makedirs(osp.dirname(dst), exist_ok=True)
                with tar.extractfile(member) as src, open(dst, 'wb') as f:
                    f.write(src.read())
                taken[cls_name] += 1
        written[split] = sum(taken.values())
    return written
