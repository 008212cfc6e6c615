"""Convert an official SSQL-SimSiam checkpoint to ssql_mm keys.

    python tools/model_converters/ssql_official_to_mm.py SRC DST \\
        [--backbone-only] [--depth 18] [--neck-last-bias] [--trust-checkpoint]

To go on to torchvision, mmdet or mmseg, export the result with
``tools/extract_backbone.py``.
"""
import argparse
import sys
from typing import List, Optional

from ssql_mm.checkpoint import convert_official_file, report_errors


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='official checkpoint')
    parser.add_argument('dst', help='output file')
    parser.add_argument('--backbone-only', action='store_true',
                        help='keep the ResNet only, without "backbone."')
    parser.add_argument('--depth', type=int, help='expected ResNet depth')
    parser.add_argument('--neck-last-bias', action='store_true',
                        help='keep fc.6.bias as neck.fc2.bias')
    parser.add_argument('--allow-unmapped', action='store_true',
                        help='skip keys that are not understood')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='load SRC without the safe allow-list (only '
                        'for files from a trusted source)')
    args = parser.parse_args(argv)
    with report_errors('ssql_official_to_mm'):
        report = convert_official_file(
            args.src, args.dst, backbone_only=args.backbone_only,
            depth=args.depth, neck_last_bias=args.neck_last_bias,
            strict=not args.allow_unmapped, trusted=args.trust_checkpoint)
        print(report.summary())
    return 0


if __name__ == '__main__':
    sys.exit(main())
