"""Evaluate SSL checkpoints at several bit-widths (kNN and linear probe).

Example::

    python tools/bit_sweep.py work_dirs/a/epoch_100.pth work_dirs/b/epoch_100.pth \
        --data data/cache/cifar10 --bits fp 8/8 6/6 5/5 4/4 3/3 2/4 \
        --out work_dirs/bit_sweep

The backbone architecture comes from the config MMEngine stores in each
checkpoint (``meta['cfg']``), or from ``--config`` when given.
"""
import argparse

from mmengine.logging import MMLogger

from ssql_mm.checkpoint import CheckpointError
from ssql_mm.evaluation import SweepConfig, run_bit_sweep
from ssql_mm.evaluation.bit_settings import PAPER_BIT_SETTINGS
from ssql_mm.evaluation.report import format_table, write_report
from ssql_mm.models.backbones import PLACEMENTS
from ssql_mm.quantization import OBSERVERS, observer_config


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1, checked before any work starts."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected an integer, got {text!r}')
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be >= 1, got {value}')
    return value


def observer_arg(text: str) -> str:
    """argparse type: an observer name (with arguments), checked at once."""
    try:
        observer_config(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err))
    return text


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('checkpoints', nargs='+', help='checkpoint files')
    parser.add_argument('--data', required=True,
                        help='folder with train/<class>/ and test/<class>/')
    parser.add_argument('--bits', nargs='+', default=list(PAPER_BIT_SETTINGS),
                        help="settings 'fp' or 'W/A' (default: %(default)s)")
    parser.add_argument('--knn', action='store_true', help='kNN top-1')
    parser.add_argument('--linear', action='store_true',
                        help='linear probe top-1 (both when neither is set)')
    parser.add_argument('--config', help='pretraining config (default: the '
                        "config stored in each checkpoint's meta)")
    parser.add_argument('--out', default='work_dirs/bit_sweep',
                        help='output folder for CSV, JSON, PNG, Markdown')
    parser.add_argument('--k', type=positive_int, default=200,
                        help='kNN neighbours')
    parser.add_argument('--temperature', type=float, default=0.07)
    parser.add_argument('--linear-epochs', type=positive_int, default=100)
    parser.add_argument('--linear-lr', type=float, default=0.1)
    parser.add_argument('--calib-batches', type=positive_int, default=10)
    parser.add_argument('--observer', type=observer_arg, default='minmax',
                        help='calibration observer: '
                        f"{', '.join(OBSERVERS)}, with arguments as "
                        "'percentile:percentile=99.9' (default: %(default)s)")
    parser.add_argument('--placement', choices=PLACEMENTS,
                        help='quantizer placement around residual additions '
                        "(default: each checkpoint's training placement, "
                        "else 'inputs')")
    parser.add_argument('--batch-size', type=positive_int, default=256)
    parser.add_argument('--train-per-class', type=positive_int,
                        help='bank = first N training images per class; '
                        'calibration draws from the rest (default: all '
                        'images in both)')
    parser.add_argument('--img-size', type=positive_int,
                        help='resize + centre crop')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', help='cpu, cuda, ... (default: auto)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    both = not (args.knn or args.linear)
    cfg = SweepConfig(
        knn=args.knn or both, linear=args.linear or both, knn_k=args.k,
        knn_temperature=args.temperature, linear_epochs=args.linear_epochs,
        linear_lr=args.linear_lr, calib_batches=args.calib_batches,
        observer=args.observer,
        batch_size=args.batch_size, train_per_class=args.train_per_class,
        img_size=args.img_size, seed=args.seed, placement=args.placement,
        device=args.device)
    logger = MMLogger.get_instance('bit_sweep', log_level='INFO')
    try:
        result = run_bit_sweep(args.checkpoints, args.data, args.bits, cfg,
                               args.config)
    except (ValueError, FileNotFoundError, CheckpointError) as err:
        raise SystemExit(f'bit_sweep: error: {err}') from err
    print('\n' + format_table(result))
    for path in write_report(result, args.out):
        logger.info(f'wrote {path}')


if __name__ == '__main__':
    main()
