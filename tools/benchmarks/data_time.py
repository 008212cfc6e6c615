"""Time to make one batch of two SimSiam views: per-image JPEG pipeline vs
the in-memory dataset with batched augmentation, measured in one run.

The per-image path is mmpretrain's (``CustomDataset`` on JPEG class folders,
``LoadImageFromFile``, ``MultiView`` of RandomResizedCrop, ColorJitter,
RandomGrayscale, RandomFlip, then ``SelfSupDataPreprocessor``); the batched
path is ``CIFAR10InMemory`` + ``BatchViewPreprocessor``. Both run in the
main process (``num_workers=0``) on the same number of threads.

Example:
    python tools/benchmarks/data_time.py --data data/cifar10_subset
"""
import argparse
import statistics
import time
from typing import Callable, List

import torch
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS, MODELS

import ssql_mm  # noqa: F401  (registers the dataset and preprocessor)
from ssql_mm.checkpoint import report_errors

JPEG_BASE = 'configs/_base_/datasets/cifar10_simsiam.py'
MODEL_BASE = 'configs/baselines/simsiam_resnet18-w16_1xb128-coslr-2500it_cifar10.py'


def _batch_maker(dataset, preprocessor,
                 batch_size: int) -> Callable[[int], None]:
    """A function that collates batch ``i`` of ``dataset`` and makes its
    training views with ``preprocessor``."""

    def make(i: int) -> None:
        start = (i * batch_size) % max(1, len(dataset) - batch_size)
        batch = default_collate(
            [dataset[j] for j in range(start, start + batch_size)])
        preprocessor(batch, training=True)

    return make


def jpeg_batches(data: str, batch_size: int) -> Callable[[int], None]:
    """Per-image pipeline: returns a function that makes batch ``i``."""
    cfg = Config.fromfile(JPEG_BASE)
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset,
                                  data_root=data))
    pre = MODELS.build(Config.fromfile(
        'configs/_base_/models/simsiam_resnet18_cifar.py').model.data_preprocessor)
    return _batch_maker(dataset, pre, batch_size)


def batched_batches(data: str, batch_size: int) -> Callable[[int], None]:
    """In-memory dataset + batched views: a function that makes batch ``i``."""
    dataset = DATASETS.build(dict(type='CIFAR10InMemory', data_root=data))
    pre = MODELS.build(Config.fromfile(MODEL_BASE).model.data_preprocessor)
    return _batch_maker(dataset, pre, batch_size)


def median_time(make: Callable[[int], None], steps: int) -> float:
    """Median seconds of ``make(i)`` over ``steps`` calls after one warm-up."""
    make(0)
    times: List[float] = []
    for i in range(1, steps + 1):
        start = time.perf_counter()
        make(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', default='data/cifar10_subset',
                        help='folder with train/<class>/*.jpg')
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()
    if args.batch_size < 1 or args.steps < 1:
        raise SystemExit('data_time: error: --batch-size and --steps must be '
                         '>= 1.')
    torch.set_num_threads(args.threads)
    init_default_scope('mmpretrain')
    jpeg = median_time(jpeg_batches(args.data, args.batch_size), args.steps)
    fast = median_time(batched_batches(args.data, args.batch_size), args.steps)
    with report_errors('data_time'):
        print(f'Two views of a batch of {args.batch_size}, {args.threads} '
              f'thread(s), median of {args.steps}:')
        print(f'per-image JPEG pipeline: {jpeg * 1000:.1f} ms')
        print(f'in-memory + batched:     {fast * 1000:.1f} ms')
        print(f'speed-up: {jpeg / fast:.1f}x')


if __name__ == '__main__':
    main()
