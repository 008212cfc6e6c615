"""Train a model (mmpretrain style): ``python tools/train.py CONFIG``."""
import argparse
import os

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from ssql_mm.engine.distributed import setup_cpu_distributed
from ssql_mm.engine.train_setup import merge_train_args


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint; without a path, from the latest '
        'checkpoint in the work dir')
    parser.add_argument(
        '--amp', action='store_true', help='enable automatic mixed precision')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='scale the learning rate with the actual batch size')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. key=value model.backbone.depth=18')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main() -> None:
    args = parse_args()
    cfg = merge_train_args(Config.fromfile(args.config), args)
    setup_cpu_distributed(cfg, args.launcher)
    runner = Runner.from_cfg(cfg)
    runner.train()


if __name__ == '__main__':
    main()
