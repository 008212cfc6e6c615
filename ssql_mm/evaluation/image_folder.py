"""Class-folder image sets (``<root>/<split>/<class>/*.jpg``) held in memory."""
import os
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image

__all__ = ['ImageFolderSplit', 'find_images', 'load_split']

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


@dataclass
class ImageFolderSplit:
    """Decoded images of one split.

    Args:
        images (Tensor): uint8 images, ``(N, 3, H, W)``.
        labels (Tensor): int64 class indices, ``(N,)``.
        classes (list[str]): Class names, sorted; index = label.
    """
    images: torch.Tensor
    labels: torch.Tensor
    classes: List[str]

    def __len__(self) -> int:
        return len(self.labels)


def find_images(split_dir: str) -> Tuple[List[str], List[int], List[str]]:
    """List the images of a class-folder split.

    Args:
        split_dir (str): Folder holding one sub-folder per class.

    Returns:
        tuple: Image paths, their labels and the sorted class names.
    """
    if not osp.isdir(split_dir):
        raise FileNotFoundError(
            f'Image folder {split_dir} does not exist. Expected '
            '<data>/<split>/<class>/<image> (e.g. train/cat/0001.jpg).')
    classes = sorted(d.name for d in os.scandir(split_dir) if d.is_dir())
    paths, labels = [], []
    for label, name in enumerate(classes):
        for root, _, files in sorted(os.walk(osp.join(split_dir, name))):
            for file in sorted(files):
                if file.lower().endswith(IMG_EXTENSIONS):
                    paths.append(osp.join(root, file))
                    labels.append(label)
    if not paths:
        raise ValueError(
            f'No image found in {split_dir}: expected class sub-folders '
            f'holding {"/".join(IMG_EXTENSIONS)} files.')
    return paths, labels, classes


def _decode(path: str, size: Optional[int]) -> np.ndarray:
    try:
        with Image.open(path) as img:
            return _resized(img.convert('RGB'), size)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError
            ) as err:  # PIL reports damage with all of these
        raise ValueError(
            f"Image '{path}' cannot be decoded ({' '.join(str(err).split())})"
            ': it is damaged or not an image. Replace or delete it; every '
            'image is used, none is skipped, so that results stay '
            'comparable.') from None


def _resized(img: Image.Image, size: Optional[int]) -> np.ndarray:
    if size is not None and img.size != (size, size):
        scale = size / min(img.size)
        w, h = (max(size, round(s * scale)) for s in img.size)
        img = img.resize((w, h), Image.BILINEAR)
        left, top = (w - size) // 2, (h - size) // 2
        img = img.crop((left, top, left + size, top + size))
    return np.asarray(img, dtype=np.uint8)


def load_split(split_dir: str,
               size: Optional[int] = None,
               classes: Optional[Sequence[str]] = None) -> ImageFolderSplit:
    """Decode every image of a split into one uint8 tensor.

    Args:
        split_dir (str): Folder holding one sub-folder per class.
        size (int, optional): Resize the shorter side to ``size`` and crop
            the centre square. Defaults to None (images must share a size).
        classes (Sequence[str], optional): The class list another split
            uses; this split must have the same. Defaults to None.

    Returns:
        ImageFolderSplit: The images, labels and class names.

    Raises:
        ValueError: An image cannot be decoded (the message names it; the
            split is not loaded without it), or sizes or classes differ.
    """
    paths, labels, found = find_images(split_dir)
    if classes is not None and list(classes) != found:
        raise ValueError(f'Classes of {split_dir} ({found}) differ from the '
                         f'training classes ({list(classes)}).')
    arrays = [_decode(p, size) for p in paths]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f'Images in {split_dir} have different sizes '
                         f'{sorted(shapes)[:4]}; pass an image size.')
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
    return ImageFolderSplit(images.contiguous(), torch.tensor(labels), found)
