"""Turn ``tools/train.py`` / ``tools/test.py`` options into a checked config."""
import os
import os.path as osp
import re
import warnings
from argparse import ArgumentParser, Namespace
from typing import Iterator, Tuple

from mmengine.config import Config, ConfigDict, DictAction

__all__ = [
    'add_random_state_hook', 'add_runner_args', 'merge_runner_args',
    'merge_train_args', 'merge_test_args', 'check_data_roots',
    'ignore_per_image_warnings', 'PER_IMAGE_WARNINGS'
]

_LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')

# (message, module) of third-party UserWarnings raised once per image.
PER_IMAGE_WARNINGS = (
    # mmcv.adjust_color with the pillow backend, which mmpretrain's
    # ColorJitter uses by default (the SimSiam view pipeline).
    ("Only use 'alpha' for pillow backend.", 'mmcv.image.photometric'),
)


def ignore_per_image_warnings() -> None:
    """Ignore exactly :data:`PER_IMAGE_WARNINGS`, which would repeat for
    every training image; other warnings are untouched.

    ``tools/train.py`` and ``tools/test.py`` call this before building the
    runner, so forked dataloader workers inherit the filter.
    """
    for message, module in PER_IMAGE_WARNINGS:
        warnings.filterwarnings(
            'ignore', message=re.escape(message), category=UserWarning,
            module=re.escape(module) + r'\Z')


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


def add_runner_args(parser: ArgumentParser) -> None:
    """Add the options every runner tool takes: ``--work-dir``,
    ``--cfg-options``, ``--launcher`` and ``--local-rank``.

    Args:
        parser (ArgumentParser): The tool's parser.
    """
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. model.backbone.w_bits=4 '
        'model.backbone.a_bits=4')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def merge_runner_args(cfg: Config, args: Namespace) -> Config:
    """Apply the options of :func:`add_runner_args` to ``cfg``.

    Args:
        cfg (Config): The loaded config; modified in place.
        args (Namespace): Parsed options, with ``config``.

    Returns:
        Config: ``cfg``.
    """
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    return cfg


def merge_test_args(cfg: Config, args: Namespace) -> Config:
    """Apply ``tools/test.py`` options (runner options and ``checkpoint``).

    Args:
        cfg (Config): The loaded config; modified in place.
        args (Namespace): Parsed options.

    Returns:
        Config: ``cfg``.
    """
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f"Checkpoint '{args.checkpoint}' does not "
                                'exist; pass the path of a saved checkpoint.')
    merge_runner_args(cfg, args)
    cfg.load_from = args.checkpoint
    check_data_roots(cfg)
    return cfg


def add_random_state_hook(cfg: Config) -> Config:
    """Add :class:`~ssql_mm.engine.RandomStateHook` to ``custom_hooks``
    unless the config has it: a resumed run then continues every random
    stream exactly.

    Args:
        cfg (Config): The training config; modified in place.

    Returns:
        Config: ``cfg``.
    """
    hooks = list(cfg.get('custom_hooks') or [])
    names = [getattr(h.get('type'), '__name__', str(h.get('type')))
             for h in hooks if isinstance(h, dict)]
    if not any(name.split('.')[-1] == 'RandomStateHook' for name in names):
        hooks.append(dict(type='mmpretrain.RandomStateHook'))
    cfg.custom_hooks = hooks
    return cfg


def merge_train_args(cfg: Config, args: Namespace) -> Config:
    """Apply mmpretrain-style ``tools/train.py`` options to ``cfg`` and add
    :class:`~ssql_mm.engine.RandomStateHook` (exact resume).

    Args:
        cfg (Config): The loaded config; modified in place.
        args (Namespace): Parsed options (runner options, ``resume``,
            ``amp``, ``auto_scale_lr``).

    Returns:
        Config: ``cfg``.
    """
    merge_runner_args(cfg, args)
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
    add_random_state_hook(cfg)
    check_data_roots(cfg)
    return cfg
