"""Train a model (mmpretrain style): ``python tools/train.py CONFIG``."""
import argparse

from mmengine.config import Config
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from ssql_mm.checkpoint import (check_resume_checkpoint, read_last_checkpoint,
                                report_errors)
from ssql_mm.compat import describe_patches
from ssql_mm.engine import (add_runner_args, ignore_per_image_warnings,
                            merge_train_args, setup_cpu_distributed)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint; without a path, from the latest '
        'checkpoint in the work dir')
    parser.add_argument(
        '--amp', action='store_true', help='enable automatic mixed precision')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='scale the learning rate with the actual batch size')
    add_runner_args(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    ignore_per_image_warnings()
    # Bad configs, options and checkpoints end in one line naming the fix,
    # also when building the model, hooks, data or optimizer refuses a value.
    config_errors = (FileNotFoundError, ValueError, KeyError, TypeError)
    with report_errors('train', config_errors):
        cfg = merge_train_args(Config.fromfile(args.config), args)
        resume = (read_last_checkpoint(cfg.work_dir)
                  if args.resume == 'auto' else args.resume)
    setup_cpu_distributed(cfg, args.launcher)
    with report_errors('train', config_errors):
        runner = Runner.from_cfg(cfg)
        # Built here rather than inside train(), so that their errors are
        # reported as configuration errors too.
        runner.train_loop  # noqa: B018  (the property builds the loop)
        runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
        if resume is not None:
            model = runner.model
            check_resume_checkpoint(
                model.module if is_model_wrapper(model) else model, resume)
    runner.logger.info(describe_patches())
    with report_errors('train'):
        runner.train()


if __name__ == '__main__':
    main()
