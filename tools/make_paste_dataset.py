"""Build the downstream demo dataset: real CIFAR-10 test images pasted onto
backgrounds, with COCO boxes + instance masks and PNG label maps.

Example::

    python tools/make_paste_dataset.py data/cifar10_subset/test \
        data/paste_cifar10 --num-train 400 --num-val 100
"""
import argparse
import json

from mmengine.logging import MMLogger

from ssql_mm.datasets.paste_dataset import PasteSpec, build_paste_dataset


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='folder of class sub-folders of images')
    parser.add_argument('out', help='output folder')
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--classes', nargs='+', default=None,
                        help='class folders to use (default: all)')
    parser.add_argument('--image-size', type=int, default=96)
    parser.add_argument('--min-size', type=int, default=28)
    parser.add_argument('--max-size', type=int, default=44)
    parser.add_argument('--max-objects', type=int, default=3)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    spec = PasteSpec(image_size=args.image_size, min_size=args.min_size,
                     max_size=args.max_size, max_objects=args.max_objects)
    summary = build_paste_dataset(args.src, args.out, args.num_train,
                                  args.num_val, args.classes, spec, args.seed)
    MMLogger.get_instance('make_paste_dataset').info(
        f'Wrote {args.out}: {json.dumps(summary)}')


if __name__ == '__main__':
    main()
