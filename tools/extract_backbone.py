"""Export the backbone of a checkpoint for mmpretrain, mmdet/mmseg or torchvision.

Examples::

    python tools/extract_backbone.py ssql.pth r50_mmdet.pth --format mmdet
    python tools/extract_backbone.py ssql.pth r50_tv.pth --format torchvision \\
        --depth 50

Works on SSQL / SimSiam / BYOL / MoCo checkpoints (backbone under
``backbone.``, see ``--prefix``) and on backbone-only files. The torchvision
output has no ``fc``: load it with ``model.fc = torch.nn.Identity()`` then
``model.load_state_dict(sd)`` (strict), or with ``strict=False`` keeping the
random ``fc``. What was mapped, renamed and dropped is printed.
"""
import argparse
from typing import List, Optional

from ssql_mm.apis import resolve_checkpoint
from ssql_mm.checkpoint import (BACKBONE_FORMATS, export_backbone_file,
                                report_errors)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='checkpoint to read, or a model-zoo name')
    parser.add_argument('dst', help='output backbone checkpoint')
    parser.add_argument('--format', default='mmdet', choices=BACKBONE_FORMATS,
                        help='key layout of the output (default: mmdet, '
                        'also right for mmseg)')
    parser.add_argument('--prefix', default='backbone.',
                        help="backbone key prefix in SRC (default: 'backbone.'"
                        '; a backbone-only SRC is taken whole)')
    parser.add_argument('--depth', type=int,
                        help='expected ResNet depth (fail on another)')
    parser.add_argument('--allow-unmapped', action='store_true',
                        help='skip backbone keys torchvision has no name for')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='unpickle SRC without the safe allow-list '
                        '(only for files you trust)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    with report_errors('extract_backbone', (ValueError, FileNotFoundError)):
        report = export_backbone_file(
            resolve_checkpoint(args.src), args.dst, args.format, args.prefix, depth=args.depth,
            strict=not args.allow_unmapped, trusted=args.trust_checkpoint)
        print(report.summary())
        print(f'Wrote {len(report.mapped)} backbone tensors to {args.dst} '
              f'({args.format} layout).')


if __name__ == '__main__':
    main()
