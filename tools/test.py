"""Evaluate a model (mmpretrain style): ``python tools/test.py CONFIG CHECKPOINT``.

Quantized models take their bit-widths from the config, e.g.
``--cfg-options model.backbone.w_bits=4 model.backbone.a_bits=4``.
"""
import argparse

from mmengine.config import Config
from mmengine.runner import Runner

from ssql_mm.checkpoint import report_errors
from ssql_mm.engine import (add_runner_args, ignore_per_image_warnings,
                            merge_test_args, setup_cpu_distributed)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    add_runner_args(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    ignore_per_image_warnings()
    # Bad configs, options and checkpoints end in one line naming the fix.
    with report_errors('test', (FileNotFoundError, ValueError)):
        cfg = merge_test_args(Config.fromfile(args.config), args)
    setup_cpu_distributed(cfg, args.launcher)
    runner = Runner.from_cfg(cfg)
    with report_errors('test'):
        runner.test()


if __name__ == '__main__':
    main()
