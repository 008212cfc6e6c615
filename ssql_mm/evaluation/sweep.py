"""The bit-width sweep: one checkpoint, every bit setting, kNN and linear top-1."""
import math
import os.path as osp
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.logging import MMLogger
from mmengine.utils import ProgressBar

from ssql_mm.models.backbones import check_placement
from ssql_mm.models.bit_setting import BitSetting, parse_bit_settings
from ssql_mm.models.pretrained import (CalibrationOptions, PretrainedBackbone,
                                       load_pretrained)
from ssql_mm.quantization import observer_config
from ssql_mm.quantization.ptq import ptq_config
from .features import extract_features
from .image_folder import ImageFolderSplit, find_images, load_split
from .knn import knn_top1
from .linear_probe import linear_probe_top1

__all__ = ['SweepConfig', 'SweepResult', 'run_bit_sweep', 'split_bank']


# The protocol behind the model zoo's numbers: bank = the first 1,000
# training images per class, calibration from the others, these settings.
ZOO_PROTOCOL = dict(bits=('fp', '8/8', '4/4', '3/3', '2/4'),
                    train_per_class=1000)


@dataclass
class SweepConfig:
    """Options of a sweep.

    Args:
        knn (bool): Report weighted kNN top-1. Defaults to True.
        linear (bool): Report linear-probe top-1. Defaults to True.
        knn_k (int): kNN neighbours. Defaults to 200.
        knn_temperature (float): kNN vote temperature. Defaults to 0.07.
        linear_epochs (int): Linear-probe epochs. Defaults to 100.
        linear_lr (float): Linear-probe learning rate. Defaults to 0.1.
        calib_batches (int): Calibration batches. Defaults to 10.
        observer (str): Calibration observer, ``'NAME'`` or
            ``'NAME:KEY=VALUE,...'`` (``minmax``, ``ema``, ``percentile``,
            ``mse``, ``kl``). Defaults to 'minmax'.
        ptq (str, optional): Post-training quantization run after the
            ranges are found, on the same calibration batches:
            ``'adaround'``, ``'brecq'``, ``'qdrop'``, with arguments as
            ``'brecq:iters=200'`` (see ``ssql_mm.quantization.ptq``).
            Defaults to None (ranges only).
        batch_size (int): Batch size of calibration and extraction.
            Defaults to 256.
        train_per_class (int, optional): Use the first N training images
            of every class (file-name order) as the kNN bank and linear-probe
            training set, and draw the calibration images from the other
            training images, so the two never overlap. Defaults to None
            (every training image is in the bank and calibration draws from
            them too).
        img_size (int, optional): Resize + centre crop to this size.
            Defaults to None (use images as stored).
        seed (int): Seed of calibration draw and linear probe. Defaults to 0.
        placement (str, optional): Quantizer placement around residual
            additions (``'inputs'``, ``'paper'``, ``'integer'``). Defaults
            to None: each checkpoint's own (its training placement;
            ``'integer'`` for a float checkpoint).
        device (str, optional): Torch device. Defaults to None (cuda when
            available, else cpu).
    """
    knn: bool = True
    linear: bool = True
    knn_k: int = 200
    knn_temperature: float = 0.07
    linear_epochs: int = 100
    linear_lr: float = 0.1
    calib_batches: int = 10
    observer: str = 'minmax'
    ptq: Optional[str] = None
    batch_size: int = 256
    train_per_class: Optional[int] = None
    img_size: Optional[int] = None
    seed: int = 0
    placement: Optional[str] = None
    device: Optional[str] = None


@dataclass
class SweepResult:
    """Top-1 accuracies (percent) per checkpoint and setting.

    Args:
        checkpoints (list[str]): Checkpoint names (the table's columns; the
            transfer benchmark puts its observers there), in order.
        settings (list[str]): Setting names, in order.
        knn (dict): ``knn[checkpoint][setting]``; empty if not run.
        linear (dict): ``linear[checkpoint][setting]``; empty if not run.
        top1 (dict): ``top1[column][setting]``, the fine-tuned classifier's
            test top-1 (transfer benchmark); empty if not run.
        meta (dict): Data sizes and options.
    """
    checkpoints: List[str]
    settings: List[str]
    knn: Dict[str, Dict[str, float]] = field(default_factory=dict)
    linear: Dict[str, Dict[str, float]] = field(default_factory=dict)
    top1: Dict[str, Dict[str, float]] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)


def _unique_names(backbones: Sequence[PretrainedBackbone]) -> None:
    seen: Dict[str, int] = {}
    for bb in backbones:
        count = seen.get(bb.name, 0)
        seen[bb.name] = count + 1
        if count:
            bb.name = f'{bb.name}-{count + 1}'


def split_bank(train: ImageFolderSplit, per_class: Optional[int]
               ) -> Tuple[ImageFolderSplit, torch.Tensor]:
    """Split training images into a bank and a disjoint calibration pool.

    Args:
        train (ImageFolderSplit): The training split, in file-name order.
        per_class (int, optional): Bank images per class (the first ones);
            None puts every image in the bank and in the pool.

    Returns:
        tuple: The bank split and the uint8 calibration images.
    """
    if per_class is None:
        return train, train.images
    if per_class < 1:
        raise ValueError(f'train_per_class must be >= 1, got {per_class}.')
    rank = torch.zeros_like(train.labels)
    for label in train.labels.unique():
        where = (train.labels == label).nonzero().flatten()
        if len(where) <= per_class:
            raise ValueError(
                f'Class {train.classes[int(label)]!r} has {len(where)} '
                f'training images; train_per_class={per_class} leaves none '
                'for calibration. Pass a smaller --train-per-class.')
        rank[where] = torch.arange(len(where))
    in_bank = rank < per_class
    bank = ImageFolderSplit(train.images[in_bank], train.labels[in_bank],
                            train.classes)
    return bank, train.images[~in_bank]


def _evaluate(backbone: PretrainedBackbone, setting: BitSetting,
              train: ImageFolderSplit, calib_images: torch.Tensor,
              test: ImageFolderSplit, cfg: SweepConfig, device: torch.device,
              progress: ProgressBar) -> Dict[str, float]:
    calibration = CalibrationOptions(cfg.calib_batches, cfg.batch_size,
                                     cfg.seed, cfg.observer, cfg.ptq)
    model = backbone.at_setting(setting, calib_images, calibration,
                                cfg.placement, device)
    step = progress.update
    train_feats = extract_features(model, train.images, backbone.mean,
                                   backbone.std, cfg.batch_size, step)
    test_feats = extract_features(model, test.images, backbone.mean,
                                  backbone.std, cfg.batch_size, step)
    if not (torch.isfinite(train_feats).all() and
            torch.isfinite(test_feats).all()):
        raise RuntimeError(f'Non-finite features for {backbone.name} at '
                           f'{setting.name}.')
    train_y, test_y = train.labels.to(device), test.labels.to(device)
    scores = {}
    if cfg.knn:
        scores['knn'] = knn_top1(train_feats, train_y, test_feats, test_y,
                                 cfg.knn_k, cfg.knn_temperature)
    if cfg.linear:
        scores['linear'] = linear_probe_top1(
            train_feats, train_y, test_feats, test_y,
            epochs=cfg.linear_epochs, lr=cfg.linear_lr, seed=cfg.seed)
    return scores


def run_bit_sweep(checkpoints: Sequence[str],
                  data_root: str,
                  bits: Sequence[str],
                  cfg: Optional[SweepConfig] = None,
                  config: Optional[str] = None) -> SweepResult:
    """Evaluate every checkpoint at every bit setting.

    Everything that can be checked quickly (bit settings, checkpoints,
    image folders) is checked before any feature is extracted. For each
    checkpoint and setting the backbone is rebuilt quantized from the
    checkpoint's weights, calibrated on training images (float, eval mode,
    ``cfg.observer``, then frozen; then ``cfg.ptq`` when set),
    and the frozen features of both splits are extracted once; kNN and the
    linear probe both use those cached features.

    Args:
        checkpoints (Sequence[str]): Checkpoint files.
        data_root (str): Folder with ``train/<class>/`` and ``test/<class>/``.
        bits (Sequence[str]): Settings such as ``'fp'``, ``'4/4'``, ``'2/4'``
            or ``'mixed:FILE'`` (per-layer bits, see
            ``ssql_mm.models.bit_setting``).
        cfg (SweepConfig, optional): Options. Defaults to None (defaults).
        config (str, optional): Pretraining config giving the backbone of
            every checkpoint. Defaults to None (the config in each
            checkpoint's ``meta['cfg']``).

    Returns:
        SweepResult: The accuracies.
    """
    cfg = cfg or SweepConfig()
    if not (cfg.knn or cfg.linear):
        raise ValueError('Nothing to report: enable kNN and/or linear probe.')
    observer_config(cfg.observer)
    if cfg.ptq is not None:
        ptq_config(cfg.ptq)
    if cfg.placement is not None:
        check_placement(cfg.placement)
    if not checkpoints:
        raise ValueError('No checkpoint given.')
    settings = parse_bit_settings(bits)
    for split in ('train', 'test'):
        find_images(osp.join(data_root, split))
    backbones = [load_pretrained(path, config) for path in checkpoints]
    _unique_names(backbones)
    for backbone in backbones:  # architecture, weights and names must fit
        backbone.build(BitSetting(None, None))
        for setting in settings:
            if setting.is_mixed:
                backbone.build(setting, cfg.placement)

    logger = MMLogger.get_current_instance()
    device = torch.device(cfg.device or (
        'cuda' if torch.cuda.is_available() else 'cpu'))
    train = load_split(osp.join(data_root, 'train'), cfg.img_size)
    test = load_split(osp.join(data_root, 'test'), cfg.img_size,
                      train.classes)
    train, calib_images = split_bank(train, cfg.train_per_class)
    logger.info(f'Bit sweep: {len(backbones)} checkpoint(s) x '
                f'{len(settings)} setting(s); {len(train)} train / '
                f'{len(test)} test images, {len(train.classes)} classes, '
                f'device {device}.')

    batches = (math.ceil(len(train) / cfg.batch_size) +
               math.ceil(len(test) / cfg.batch_size))
    progress = ProgressBar(batches * len(backbones) * len(settings))
    result = SweepResult([b.name for b in backbones],
                         [s.name for s in settings])
    for backbone in backbones:
        for setting in settings:
            scores = _evaluate(backbone, setting, train, calib_images, test,
                               cfg, device, progress)
            for metric, value in scores.items():
                getattr(result, metric).setdefault(backbone.name,
                                                   {})[setting.name] = value
    result.meta = dict(
        data_root=data_root, num_train=len(train), num_test=len(test),
        num_calib_pool=len(calib_images),
        classes=train.classes, checkpoints=list(checkpoints),
        options=asdict(cfg), device=str(device),
        placements={b.name: cfg.placement or b.placement for b in backbones},
        mixed={s.name: s.to_dict() for s in settings if s.is_mixed})
    return result
