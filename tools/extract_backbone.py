"""Write the backbone of an SSQL / SimSiam / BYOL / MoCo checkpoint alone.

Examples::

    python tools/extract_backbone.py ssql.pth r50_mmdet.pth --format mmdet
    python tools/extract_backbone.py ssql.pth r50_tv.pth --format torchvision

The torchvision output has no ``fc``: load it with ``model.fc =
torch.nn.Identity()`` then ``model.load_state_dict(sd)`` (strict), or with
``strict=False`` keeping the random ``fc``.
"""
import argparse

from mmengine.logging import MMLogger

from ssql_mm.models.utils import BACKBONE_FORMATS, save_backbone


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='self-supervised checkpoint')
    parser.add_argument('dst', help='output backbone checkpoint')
    parser.add_argument('--format', default='mmdet', choices=BACKBONE_FORMATS,
                        help='key layout of the output (default: mmdet, '
                        'also right for mmseg)')
    parser.add_argument('--prefix', default='backbone.',
                        help="backbone key prefix in SRC (default: 'backbone.')")
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='unpickle SRC without the safe allow-list '
                        '(only for files you trust)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    report = save_backbone(args.src, args.dst, args.format, args.prefix,
                           args.trust_checkpoint)
    logger = MMLogger.get_instance('extract_backbone')
    logger.info(f'Wrote {report.kept} backbone tensors to {args.dst} '
                f'({args.format} layout); renamed {len(report.renamed)}, '
                f'dropped {len(report.dropped)} activation-range entries; '
                f'left out the other parts: {report.other_prefixes}.')


if __name__ == '__main__':
    main()
