"""Convert an ssql_mm checkpoint's backbone to torchvision ResNet weights.

    python tools/model_converters/ssql_mm_to_torchvision.py SRC DST \\
        [--depth 50] [--trust-checkpoint]
"""
import argparse
import sys

from ssql_mm.checkpoint import convert_to_torchvision_file


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='ssql_mm checkpoint (full or backbone)')
    parser.add_argument('dst', help='output torchvision state dict')
    parser.add_argument('--depth', type=int, help='expected ResNet depth')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='load SRC without the safe allow-list (only '
                        'for files from a trusted source)')
    args = parser.parse_args()
    report = convert_to_torchvision_file(
        args.src, args.dst, depth=args.depth, trusted=args.trust_checkpoint)
    print(report.summary())
    return 0


if __name__ == '__main__':
    sys.exit(main())
