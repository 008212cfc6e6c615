"""Search per-layer bit-widths for one checkpoint under a budget.

Example::

    python tools/mixed_precision.py CKPT --budget bops=3/3 \
        --calib-data data/cifar10_subset/train --out work_dirs/bits_bops3.yml

The file it writes is a per-layer bit setting: pass it as ``mixed:FILE`` to
tools/bit_sweep.py --bits and tools/deploy/export_onnx.py --bits, or as
``mixed=FILE`` to a ``QuantResNet*`` backbone config. ``--list-layers``
prints the names a bits file may use.
"""
import argparse

import torch
from mmengine.logging import MMLogger

from ssql_mm.apis import resolve_checkpoint
from ssql_mm.arguments import positive_int
from ssql_mm.checkpoint import check_writable, report_errors
from ssql_mm.evaluation import load_split
from ssql_mm.evaluation.mixed_precision import (SearchOptions,
                                                describe_quantizers,
                                                format_search, search_bits)
from ssql_mm.models.backbones import PLACEMENTS
from ssql_mm.models.bit_setting import save_bit_setting
from ssql_mm.quantization.sensitivity import SENSITIVITY_METHODS


def bits_list(text: str) -> tuple:
    """argparse type: comma-separated bit-widths."""
    try:
        return tuple(int(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'expected comma-separated integers, got {text!r}')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('checkpoint', help='checkpoint with backbone weights, '
                        'or a model-zoo name')
    parser.add_argument('--budget', action='append', default=[],
                        help='bops=VALUE, size=VALUE (bytes) or '
                        'avg-bits=VALUE; VALUE a number (k/M/G suffixes) or '
                        'W/A for the cost of that uniform setting; repeat to '
                        'meet several')
    parser.add_argument('--calib-data',
                        help='calibration images: a folder of class '
                        'sub-folders (e.g. data/cifar10_subset/train)')
    parser.add_argument('--out', help='the bits file to write (.yml or '
                        '.json)')
    parser.add_argument('--method', choices=SENSITIVITY_METHODS,
                        default='hessian',
                        help='hessian: HAWQ-v2 traces x perturbations; '
                        'measured: feature drift of each quantizer alone '
                        '(default: %(default)s)')
    parser.add_argument('--placement', choices=PLACEMENTS,
                        help="quantizer placement (default: the "
                        "checkpoint's training placement; 'integer' for a "
                        'float checkpoint)')
    parser.add_argument('--w-bits', type=bits_list, default=(2, 3, 4, 8),
                        help='weight candidates (default: 2,3,4,8)')
    parser.add_argument('--a-bits', type=bits_list, default=(4, 6, 8),
                        help='activation candidates (default: 4,6,8)')
    parser.add_argument('--allow', action='append', default=[],
                        help="restrict candidates: 'PATTERN:w=4,8' or "
                        "'PATTERN:a=8' (fnmatch over quantizer names)")
    parser.add_argument('--num-images', type=positive_int, default=256,
                        help='calibration images drawn from --calib-data '
                        '(default: %(default)s)')
    parser.add_argument('--img-size', type=positive_int,
                        help='resize + centre crop calibration images')
    parser.add_argument('--batch-size', type=positive_int, default=32)
    parser.add_argument('--samples', type=positive_int, default=16,
                        help='Hutchinson samples per quantizer and batch '
                        '(hessian; default: %(default)s)')
    parser.add_argument('--time-limit', type=float,
                        help='solver time limit in seconds')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--config', help='pretraining config (default: the '
                        "config stored in the checkpoint's meta)")
    parser.add_argument('--device', help='cpu, cuda, ... (default: auto)')
    parser.add_argument('--list-layers', action='store_true',
                        help='print the quantizer names a bits file may use '
                        'and exit')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    with report_errors('mixed_precision', (ValueError, FileNotFoundError)):
        if args.list_layers:
            print(describe_quantizers(resolve_checkpoint(args.checkpoint),
                                      args.placement, args.config))
            return
        missing = [flag for flag, value in (
            ('--budget', args.budget), ('--calib-data', args.calib_data),
            ('--out', args.out)) if not value]
        if missing:
            raise ValueError(f"{', '.join(missing)} required (or "
                             '--list-layers).')
        check_writable(args.out)  # before any image is read
        images = load_split(args.calib_data, args.img_size).images
        order = torch.randperm(
            len(images), generator=torch.Generator().manual_seed(args.seed))
        images = images[order[:args.num_images]]
        if not MMLogger.check_instance_created('mixed_precision'):
            MMLogger.get_instance('mixed_precision', log_level='INFO')
        options = SearchOptions(
            method=args.method, w_candidates=args.w_bits,
            a_candidates=args.a_bits, constraints=args.allow,
            placement=args.placement, batch_size=args.batch_size,
            num_samples=args.samples, seed=args.seed,
            time_limit=args.time_limit, device=args.device)
        result = search_bits(resolve_checkpoint(args.checkpoint),
                             args.budget, images, options,
                             args.config)
        save_bit_setting(result.setting, args.out, result.info())
        print(format_search(result))
        print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
