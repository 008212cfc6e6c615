"""Transfer benchmark: fine-tune, then PTQ at several bit-widths and calibrations.

Fine-tunes a pretrained checkpoint with a float config from
configs/benchmarks/classification/, then tests the fine-tuned weights with
the backbone quantized at every bit setting, calibrated (1,000 training
images in the suite's configs) with every observer, or with an observer and
a reconstruction (``mse+qdrop``: AdaRound, BRECQ or QDrop from the MSE
ranges, on 256 of those images); writes a table (transfer.md, also
printed), CSV, JSON and a plot to --work-dir.

Example (the CPU demo on the CIFAR-10 subset)::

    python tools/benchmarks/transfer.py \
        configs/benchmarks/classification/resnet18-cifar-w16_1xb64-finetune-steplr-10e_cifar10-subset.py \
        --pretrained PRETRAINED.pth --arch-from-checkpoint \
        --bits fp 8/8 4/4 2/4 --observers minmax mse percentile \
        --work-dir work_dirs/transfer_cifar10-subset

With ``--qat`` the config is a quantized (QAT) one: it is fine-tuned at its
own bits and tested at them (``--bits`` and ``--observers`` do not apply).
"""
import argparse

from mmengine.config import DictAction
from mmengine.logging import MMLogger

from ssql_mm.apis import resolve_checkpoint
from ssql_mm.checkpoint import report_errors
from ssql_mm.evaluation import run_qat_transfer, run_transfer
from ssql_mm.evaluation.report import format_table, write_report
from ssql_mm.quantization import OBSERVERS
from ssql_mm.quantization.ptq import PTQ_METHODS


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='float transfer config')
    parser.add_argument('--work-dir', required=True,
                        help='output folder (fine-tuning, PTQ runs, report)')
    parser.add_argument('--pretrained', help='pretrained checkpoint file or '
                        "model-zoo name to fine-tune from (default: the "
                        "config's init_cfg)")
    parser.add_argument('--finetuned', help='skip fine-tuning: quantize this '
                        'fine-tuned checkpoint')
    parser.add_argument('--bits', nargs='+', default=['fp', '8/8', '4/4', '2/4'],
                        help="settings 'fp' or 'W/A' (default: %(default)s)")
    parser.add_argument('--observers', nargs='+', default=['minmax'],
                        help=f"calibrations: observers {', '.join(OBSERVERS)}"
                        ", with arguments as 'percentile:percentile=99.9', "
                        "or OBSERVER+METHOD to reconstruct after them, "
                        f"METHOD one of {', '.join(PTQ_METHODS)} "
                        "('mse+qdrop', 'mse+brecq:iters=200') "
                        '(default: %(default)s)')
    parser.add_argument('--arch-from-checkpoint', action='store_true',
                        help="use the backbone architecture stored in "
                        "--pretrained's config")
    parser.add_argument('--pretrain-config', help='pretraining config of '
                        '--pretrained when it stores none')
    parser.add_argument('--metric', default='accuracy/top1',
                        help="test metric reported, e.g. 'coco/bbox_mAP' "
                        "(mmdet) or 'mIoU' (mmseg) (default: %(default)s)")
    parser.add_argument('--qat', action='store_true',
                        help='quantization-aware fine-tuning: train the '
                        'quantized config and test it at its bits')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings (key=value)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logger = MMLogger.get_instance('transfer', log_level='INFO')
    with report_errors('transfer', (ValueError, TypeError, FileNotFoundError)):
        pretrained = (resolve_checkpoint(args.pretrained)
                      if args.pretrained else None)
        common = dict(pretrained=pretrained, finetuned=args.finetuned,
                      cfg_options=args.cfg_options,
                      arch_from_checkpoint=args.arch_from_checkpoint,
                      pretrain_config=args.pretrain_config,
                      metric=args.metric)
        if args.qat:
            result = run_qat_transfer(args.config, args.work_dir, **common)
        else:
            result = run_transfer(args.config, args.work_dir, args.bits,
                                  args.observers, **common)
        # the files first: a reader that stops early (| head) ends the tool
        paths = write_report(result, args.work_dir, stem='transfer')
        print('\n' + format_table(result))
        for path in paths:
            logger.info(f'wrote {path}')


if __name__ == '__main__':
    main()
