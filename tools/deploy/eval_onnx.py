"""Evaluate an exported ONNX feature model in onnxruntime (kNN / linear top-1).

Same protocol as tools/bit_sweep.py: features of the training images form the
kNN bank and the linear probe's training set, the test images are scored.
With --reference (a checkpoint written by export_onnx.py --save-calibrated)
the fake-quantized PyTorch model that was exported is evaluated on the same
images and its features are compared element by element.

Example::

    python tools/deploy/eval_onnx.py model.onnx --data data/cifar10 \
        --reference model.calib.pth --bits 8/8 --out work_dirs/deploy/eval.json
"""
import argparse
import json
import os
import os.path as osp
from typing import Dict

import torch

from ssql_mm.checkpoint import report_errors
from ssql_mm.deploy import OnnxRunner, output_parity
from ssql_mm.deploy.pipeline import (build_backbone, parse_export_bits,
                                     require_ranges)
from ssql_mm.evaluation import (extract_features, knn_top1,
                                linear_probe_top1, load_pretrained,
                                load_split)
from ssql_mm.evaluation.sweep import split_bank


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('model', help='the .onnx file (from export_onnx.py)')
    parser.add_argument('--data', required=True,
                        help='folder with train/<class>/ and test/<class>/')
    parser.add_argument('--knn', action='store_true', help='kNN top-1')
    parser.add_argument('--linear', action='store_true',
                        help='linear probe top-1 (both when neither is set)')
    parser.add_argument('--reference',
                        help='calibrated checkpoint (export_onnx.py '
                        '--save-calibrated) to compare with')
    parser.add_argument('--bits', help="the exported 'W/A' (default: the "
                        "model's metadata)")
    parser.add_argument('--k', type=int, default=200, help='kNN neighbours')
    parser.add_argument('--temperature', type=float, default=0.07)
    parser.add_argument('--linear-epochs', type=int, default=100)
    parser.add_argument('--linear-lr', type=float, default=0.1)
    parser.add_argument('--batch-size', type=int, default=256)
    parser.add_argument('--train-per-class', type=int,
                        help='bank = first N training images per class '
                        '(as in bit_sweep.py)')
    parser.add_argument('--test-limit', type=int,
                        help='score only the first N test images')
    parser.add_argument('--img-size', type=int, help='resize + centre crop')
    parser.add_argument('--threads', type=int,
                        help='onnxruntime intra-op threads')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', help='write the results as JSON here')
    return parser.parse_args()


def scores(train_feats: torch.Tensor, train_y: torch.Tensor,
           test_feats: torch.Tensor, test_y: torch.Tensor,
           args: argparse.Namespace) -> Dict[str, float]:
    both = not (args.knn or args.linear)
    result = {}
    if args.knn or both:
        result['knn'] = knn_top1(train_feats, train_y, test_feats, test_y,
                                 args.k, args.temperature)
    if args.linear or both:
        result['linear'] = linear_probe_top1(
            train_feats, train_y, test_feats, test_y,
            epochs=args.linear_epochs, lr=args.linear_lr, seed=args.seed)
    return result


def main() -> None:
    args = parse_args()
    with report_errors('eval_onnx', (ValueError, FileNotFoundError)):
        runner = OnnxRunner(args.model, args.threads)
        meta = runner.metadata
        if 'ssql_mm.mean' not in meta:
            raise ValueError(f'{args.model} carries no normalisation '
                             'metadata; export it with '
                             'tools/deploy/export_onnx.py.')
        mean, std = json.loads(meta['ssql_mm.mean']), json.loads(
            meta['ssql_mm.std'])
        setting = parse_export_bits(args.bits or meta.get('ssql_mm.bits',
                                                          'fp'))
        reference = None
        if args.reference:
            pretrained = load_pretrained(args.reference)
            reference = build_backbone(pretrained, setting, args.reference)
            require_ranges(reference, f'Reference {args.reference}')
        train = load_split(osp.join(args.data, 'train'), args.img_size)
        test = load_split(osp.join(args.data, 'test'), args.img_size,
                          train.classes)
        train, _ = split_bank(train, args.train_per_class)
        if args.test_limit:
            test.images, test.labels = (test.images[:args.test_limit],
                                        test.labels[:args.test_limit])

        feats = {
            split: runner.extract(data.images, mean, std, 'features',
                                  args.batch_size)
            for split, data in (('train', train), ('test', test))
        }
        result = {
            'model': args.model, 'bits': setting.name,
            'num_train': len(train), 'num_test': len(test),
            'onnxruntime': scores(feats['train'], train.labels, feats['test'],
                                  test.labels, args)
        }
        if reference is not None:
            ref = {
                split: extract_features(reference, data.images, mean, std,
                                        args.batch_size)
                for split, data in (('train', train), ('test', test))
            }
            result['pytorch'] = scores(ref['train'], train.labels, ref['test'],
                                       test.labels, args)
            result['parity'] = output_parity(
                ref['test'], feats['test'], setting.a_bits or 8).to_dict()
        if args.out:
            os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
            with open(args.out, 'w') as f:
                json.dump(result, f, indent=2)
        print(json.dumps(result, indent=2))


if __name__ == '__main__':
    main()
