"""Export a checkpoint's backbone at a chosen bit-width to a QDQ ONNX model.

Examples::

    # SSL / classification checkpoint -> feature model (output 'features')
    python tools/deploy/export_onnx.py CKPT --bits 8/8 \
        --calib-data data/cifar10/train --out model.onnx
    # with a linear classifier (adds output 'logits')
    python tools/deploy/export_onnx.py CKPT --bits 4/4 --head linear.pth \
        --calib-data data/cifar10/train --out model.onnx
    # strong PTQ: reconstruct once (BRECQ), keep the result, re-export it
    python tools/deploy/export_onnx.py CKPT --bits 4/4 --ptq brecq \
        --calib-data data/cifar10/train --out model.onnx \
        --save-calibrated model.calib.pth
    python tools/deploy/export_onnx.py model.calib.pth --bits 4/4 \
        --out again.onnx
    # a detector's / segmenter's backbone as its config sets it
    python tools/deploy/export_onnx.py DET_CKPT --config DET_CONFIG \
        --as-configured --out backbone.onnx

Without --calib-data the frozen activation ranges stored in the checkpoint
are used.
"""
import argparse
import os.path as osp

from ssql_mm.apis import resolve_checkpoint
from ssql_mm.arguments import observer_arg, ptq_arg
from ssql_mm.checkpoint import (check_finite_weights, check_writable,
                                report_errors)
from ssql_mm.deploy import DEFAULT_OPSET, ExportReport
from ssql_mm.deploy.pipeline import (export_checkpoint,
                                     export_configured_backbone,
                                     parse_export_bits)
from ssql_mm.evaluation import load_split
from ssql_mm.models.backbones import PLACEMENTS
from ssql_mm.quantization import OBSERVERS
from ssql_mm.quantization.ptq import PTQ_METHODS


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('checkpoint', help='checkpoint with backbone weights, '
                        'or a model-zoo name')
    parser.add_argument('--out', required=True, help='the .onnx file')
    parser.add_argument('--bits', default='8/8',
                        help="'W/A' (2-8 bits each, 0 = float), 'fp' or "
                        "'mixed:FILE' (per-layer bits, see "
                        'tools/mixed_precision.py; default: %(default)s)')
    parser.add_argument('--head', help='linear-classifier checkpoint '
                        '(head.fc.*): adds a logits output')
    parser.add_argument('--calib-data',
                        help='calibration images: a folder of class '
                        'sub-folders (e.g. data/cifar10/train)')
    parser.add_argument('--calib-batches', type=int, default=10)
    parser.add_argument('--batch-size', type=int, default=256,
                        help='calibration batch size')
    parser.add_argument('--img-size', type=int,
                        help='resize + centre crop calibration images')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--observer', type=observer_arg,
                        help='calibration observer: '
                        f"{', '.join(OBSERVERS)}, with arguments as "
                        "'percentile:percentile=99.9' (default: minmax)")
    parser.add_argument('--ptq', type=ptq_arg,
                        help='post-training quantization after calibration, '
                        f"on the calibration images: {', '.join(PTQ_METHODS)}"
                        ", with arguments as 'brecq:iters=500'; the result "
                        'is baked into the model (keep it with '
                        '--save-calibrated)')
    parser.add_argument('--config', help='the model config (default: the '
                        "config stored in the checkpoint's meta)")
    parser.add_argument('--as-configured', action='store_true',
                        help="export the config's backbone as configured "
                        '(bits, out_indices, frozen ranges): for mmdet / '
                        'mmseg backbones; --bits and --head do not apply')
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET)
    parser.add_argument('--placement', choices=PLACEMENTS,
                        help="quantizer placement: 'integer' writes the "
                        'all-integer graph (every conv and residual addition '
                        "an integer kernel); default: the checkpoint's "
                        "training placement; 'integer' for a float one")
    parser.add_argument('--int8-residuals', action='store_const',
                        dest='placement', const='integer',
                        help='the same as --placement integer')
    parser.add_argument('--save-calibrated',
                        help='also save the calibrated backbone (the exact '
                        'PyTorch reference for tools/deploy/eval_onnx.py)')
    return parser.parse_args()


def summary(report: ExportReport, path: str) -> str:
    bits = sorted({f'{w or "fp"}w{a or "fp"}a'
                   for w, a in report.quantized.values()})
    lines = [
        f'wrote {path} ({osp.getsize(path) / 2**20:.2f} MiB, opset '
        f'{report.opset}), outputs {report.outputs}',
        f'quantized layers: {len(report.quantized)} ({", ".join(bits)}); '
        f'float layers: {len(report.float_layers)}; BatchNorms folded: '
        f'{len(report.folded_bn)}',
    ]
    if report.clipped_inputs:
        lines.append(f'sub-8-bit inputs clipped in the integer domain: '
                     f'{len(report.clipped_inputs)}')
    if report.tensor_quantizers:
        lines.append(f'block quantizers around residual additions: '
                     f'{len(report.tensor_quantizers)}')
    if report.snapped_biases:
        lines.append(
            f'biases moved onto their int32 grid in the PyTorch model: '
            f'{len(report.snapped_biases)} layers, by up to '
            f'{max(report.snapped_biases.values()):.2f} accumulator step')
    if report.float_bias:
        lines.append(f'bias kept float (int32 overflow): {report.float_bias}')
    return '\n'.join(lines)


def main() -> None:
    args = parse_args()
    with report_errors('export_onnx', (ValueError, FileNotFoundError)):
        if not args.as_configured:
            parse_export_bits(args.bits)
        for path in (args.out, args.save_calibrated):
            if path is not None:
                check_writable(path)  # before images are read
        checkpoint = resolve_checkpoint(args.checkpoint)
        check_finite_weights(checkpoint)  # NaN weights export NaN outputs
        if args.head:
            check_finite_weights(args.head, prefix=None)
        images = None
        if args.calib_data:
            images = load_split(args.calib_data, args.img_size).images
        if args.as_configured:
            if args.config is None:
                raise ValueError('--as-configured needs --config (the mmdet '
                                 '/ mmseg config of the checkpoint).')
            if args.head or args.placement or args.observer or args.ptq:
                raise ValueError('--head, --placement, --observer and --ptq '
                                 'do not apply with --as-configured (the '
                                 'config sets the placement; calibrate or '
                                 'reconstruct a downstream model with '
                                 'QuantCalibrationHook(observer=..., '
                                 'ptq=...) and export the checkpoint it '
                                 'saves).')
            report, _ = export_configured_backbone(
                args.config, checkpoint, args.out, images,
                args.calib_batches, args.batch_size, args.seed, args.opset)
        else:
            report, _ = export_checkpoint(
                checkpoint, args.out, args.bits, args.head, images,
                args.config, args.calib_batches, args.batch_size, args.seed,
                args.opset, args.placement, args.save_calibrated,
                observer=args.observer or 'minmax', ptq=args.ptq)
        print(summary(report, args.out))


if __name__ == '__main__':
    main()
