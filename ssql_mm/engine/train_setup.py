"""Turn command-line options into a checked training config."""
import os.path as osp
from argparse import Namespace
from typing import Iterator, Tuple

from mmengine.config import Config, ConfigDict

__all__ = ['merge_train_args', 'check_data_roots']

_LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _dataset_roots(cfg: Config) -> Iterator[Tuple[str, str]]:
    for loader in _LOADERS:
        dataset = (cfg.get(loader) or {}).get('dataset')
        while isinstance(dataset, (dict, ConfigDict)):
            root = dataset.get('data_root')
            if root:
                yield f'{loader}.dataset.data_root', root
            dataset = dataset.get('dataset')  # wrappers (RepeatDataset, ...)


def check_data_roots(cfg: Config) -> None:
    """Fail before training when a dataset folder does not exist.

    Args:
        cfg (Config): The config to check.
    """
    for key, root in _dataset_roots(cfg):
        if '://' in str(root) or osp.isdir(root):
            continue
        raise FileNotFoundError(
            f"Data folder '{root}' ({key}) does not exist. Put the dataset "
            f'there or point the config at it, e.g. --cfg-options '
            f'{key}=/path/to/data')


def merge_train_args(cfg: Config, args: Namespace) -> Config:
    """Apply mmpretrain-style ``tools/train.py`` options to ``cfg``.

    Args:
        cfg (Config): The loaded config; modified in place.
        args (Namespace): Parsed options (``work_dir``, ``resume``, ``amp``,
            ``auto_scale_lr``, ``launcher``, ``cfg_options``).

    Returns:
        Config: ``cfg``.
    """
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper == 'AmpOptimWrapper':
            pass
        elif optim_wrapper != 'OptimWrapper':
            raise ValueError(f'--amp needs optim_wrapper.type=OptimWrapper, '
                             f'the config has {optim_wrapper}.')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f"--resume checkpoint '{args.resume}' "
                                    'does not exist; pass an existing file '
                                    "or '--resume' alone for the latest one "
                                    'in the work dir.')
        cfg.resume, cfg.load_from = True, args.resume
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    check_data_roots(cfg)
    return cfg
