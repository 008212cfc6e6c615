"""Evaluate SSL checkpoints at several bit-widths (kNN and linear probe).

Example::

    python tools/bit_sweep.py work_dirs/a/epoch_100.pth work_dirs/b/epoch_100.pth \
        --data data/cache/cifar10 --bits fp 8/8 6/6 5/5 4/4 3/3 2/4 \
        --out work_dirs/bit_sweep

The backbone architecture comes from the config MMEngine stores in each
checkpoint (``meta['cfg']``), or from ``--config`` when given. A checkpoint
may also be named by its model-zoo name. ``--preset zoo`` evaluates with the
protocol behind the model zoo's numbers (bank: first 1,000 training images
per class, calibration from the others; FP, 8w8a, 4w4a, 3w3a, 2w4a).
"""
import argparse
import os.path as osp

from mmengine.logging import MMLogger

from ssql_mm.apis import resolve_checkpoint
from ssql_mm.arguments import (observer_arg, positive_float, positive_int,
                               ptq_arg)
from ssql_mm.checkpoint import check_writable, report_errors
from ssql_mm.evaluation import SweepConfig, run_bit_sweep
from ssql_mm.evaluation.bit_settings import (PAPER_BIT_SETTINGS,
                                             parse_bit_settings)
from ssql_mm.evaluation.device import resolve_device
from ssql_mm.evaluation.sweep import ZOO_PROTOCOL
from ssql_mm.evaluation.report import format_table, write_report
from ssql_mm.models.backbones import PLACEMENTS
from ssql_mm.quantization import OBSERVERS
from ssql_mm.quantization.ptq import PTQ_METHODS


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('checkpoints', nargs='+',
                        help='checkpoint files or model-zoo names')
    parser.add_argument('--data', required=True,
                        help='folder with train/<class>/ and test/<class>/')
    parser.add_argument('--preset', choices=['zoo'],
                        help="'zoo': the model zoo's protocol (bits "
                        f"{' '.join(ZOO_PROTOCOL['bits'])}, "
                        f"--train-per-class {ZOO_PROTOCOL['train_per_class']})"
                        '; explicit options win')
    parser.add_argument('--bits', nargs='+',
                        help="settings 'fp', 'W/A' or 'mixed:FILE' (per-layer "
                        'bits, see tools/mixed_precision.py; default: '
                        f"{' '.join(PAPER_BIT_SETTINGS)})")
    parser.add_argument('--knn', action='store_true', help='kNN top-1')
    parser.add_argument('--linear', action='store_true',
                        help='linear probe top-1 (both when neither is set)')
    parser.add_argument('--config', help='pretraining config (default: the '
                        "config stored in each checkpoint's meta)")
    parser.add_argument('--out', default='work_dirs/bit_sweep',
                        help='output folder for CSV, JSON, PNG, Markdown')
    parser.add_argument('--k', type=positive_int, default=200,
                        help='kNN neighbours')
    parser.add_argument('--temperature', type=positive_float, default=0.07)
    parser.add_argument('--linear-epochs', type=positive_int, default=100)
    parser.add_argument('--linear-lr', type=positive_float, default=0.1)
    parser.add_argument('--calib-batches', type=positive_int, default=10)
    parser.add_argument('--observer', type=observer_arg, default='minmax',
                        help='calibration observer: '
                        f"{', '.join(OBSERVERS)}, with arguments as "
                        "'percentile:percentile=99.9' (default: %(default)s)")
    parser.add_argument('--ptq', type=ptq_arg,
                        help='reconstruct after calibration: '
                        f"{', '.join(PTQ_METHODS)}, with arguments as "
                        "'brecq:iters=200' (default: none)")
    parser.add_argument('--placement', choices=PLACEMENTS,
                        help='quantizer placement around residual additions '
                        "(default: each checkpoint's training placement; "
                        "'integer' for a float checkpoint)")
    parser.add_argument('--batch-size', type=positive_int, default=256)
    parser.add_argument('--train-per-class', type=positive_int,
                        help='bank = first N training images per class; '
                        'calibration draws from the rest (default: all '
                        'images in both)')
    parser.add_argument('--img-size', type=positive_int,
                        help='resize + centre crop')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', help='cpu, cuda, ... (default: auto)')
    args = parser.parse_args()
    preset = ZOO_PROTOCOL if args.preset == 'zoo' else {}
    if args.bits is None:
        args.bits = list(preset.get('bits', PAPER_BIT_SETTINGS))
    if args.train_per_class is None:
        args.train_per_class = preset.get('train_per_class')
    return args


def main() -> None:
    args = parse_args()
    both = not (args.knn or args.linear)
    cfg = SweepConfig(
        knn=args.knn or both, linear=args.linear or both, knn_k=args.k,
        knn_temperature=args.temperature, linear_epochs=args.linear_epochs,
        linear_lr=args.linear_lr, calib_batches=args.calib_batches,
        observer=args.observer, ptq=args.ptq,
        batch_size=args.batch_size, train_per_class=args.train_per_class,
        img_size=args.img_size, seed=args.seed, placement=args.placement,
        device=args.device)
    logger = MMLogger.get_instance('bit_sweep', log_level='INFO')
    with report_errors('bit_sweep', (ValueError, FileNotFoundError)):
        parse_bit_settings(args.bits)
        check_writable(osp.join(args.out, 'bit_sweep.json'))
        resolve_device(args.device)
        checkpoints = [resolve_checkpoint(c) for c in args.checkpoints]
        result = run_bit_sweep(checkpoints, args.data, args.bits, cfg,
                               args.config)
        for path in write_report(result, args.out):
            logger.info(f'wrote {path}')
        print('\n' + format_table(result))


if __name__ == '__main__':
    main()
