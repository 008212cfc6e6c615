"""Build the small real CIFAR-10 subset committed under data/cifar10_subset.

Example:
    python tools/make_cifar_subset.py ../shared/data/cifar10 data/cifar10_subset
"""
import argparse

from ssql_mm.checkpoint import report_errors
from ssql_mm.datasets import make_cifar10_subset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('archive_dir', help='folder with train.tar.gz and test.tar.gz')
    parser.add_argument('out_dir', help='output folder')
    parser.add_argument('--train-per-class', type=int, default=300)
    parser.add_argument('--test-per-class', type=int, default=100)
    args = parser.parse_args()
    written = make_cifar10_subset(
        args.archive_dir, args.out_dir,
        dict(train=args.train_per_class, test=args.test_per_class))
    with report_errors('make_cifar_subset'):
        print(f'wrote {written} images under {args.out_dir}')


if __name__ == '__main__':
    main()
