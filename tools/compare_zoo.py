"""Bit-width table of the shipped SimSiam and SSQL-SimSiam checkpoints.

Fetches both zoo models (from the files shipped with the package, or from
``SSQL_MM_BASE_URL``): the float SimSiam baseline and SSQL-SimSiam trained
with the default ``integer`` placement. Then measures kNN top-1 on the 10,000
CIFAR-10 test images at FP, 8w8a, 4w4a, 3w3a and 2w4a with the zoo's protocol
(bank: first 1,000 training images per class; calibration: other training
images, min/max), both quantized with that placement. Prints the table and
saves CSV, JSON, Markdown and a plot.

Example:
    python tools/compare_zoo.py --data ../shared/data/cifar10
"""
import argparse
import os.path as osp

from mmengine.logging import MMLogger

from ssql_mm.apis import download_checkpoint
from ssql_mm.checkpoint import report_errors
from ssql_mm.datasets import extract_cifar10
from ssql_mm.evaluation import SweepConfig, run_bit_sweep
from ssql_mm.evaluation.report import format_table, write_report
from ssql_mm.evaluation.sweep import ZOO_PROTOCOL
from ssql_mm.models.backbones import DEFAULT_PLACEMENT

MODELS = ('simsiam_resnet18-w16_1xb128-coslr-2500it_cifar10',
          'ssql-simsiam_resnet18-w16_1xb128-coslr-2500it_cifar10')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', default='../shared/data/cifar10',
                        help='CIFAR-10: train/ and test/ class folders, or '
                        'train.tar.gz and test.tar.gz (extracted once to '
                        'data/cache)')
    parser.add_argument('--out', default='work_dirs/compare_zoo')
    parser.add_argument('--train-per-class', type=int,
                        default=ZOO_PROTOCOL['train_per_class'])
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logger = MMLogger.get_instance('compare_zoo', log_level='INFO')
    with report_errors('compare_zoo', (ValueError, FileNotFoundError)):
        data = args.data
        if not osp.isdir(osp.join(data, 'test')):
            data = extract_cifar10(args.data, 'data/cache')
        paths = [download_checkpoint(name, progress=False) for name in MODELS]
        result = run_bit_sweep(
            paths, data, ZOO_PROTOCOL['bits'],
            SweepConfig(knn=True, linear=False,
                        train_per_class=args.train_per_class,
                        placement=DEFAULT_PLACEMENT))
        names = [n.split('_resnet')[0] for n in MODELS]
        result.knn = {new: result.knn[old]
                      for old, new in zip(result.checkpoints, names)}
        result.checkpoints = names
        # the files first: a reader that stops early (| head) ends the tool
        paths = write_report(result, args.out, stem='compare_zoo')
        print('\n' + format_table(result))
        for path in paths:
            logger.info(f'wrote {path}')


if __name__ == '__main__':
    main()
