"""SSQL step time relative to its float algorithm, measured in one run.

For each pair (SimSiam, BYOL, MoCo v2) both models are built from the
CIFAR-10 ResNet-18 configs (identical except for the algorithm) and trained
on the same batch; steps alternate between the two so that machine load
affects both alike. A step is forward, backward and an SGD update. Prints
the median times and their ratio per pair.

Example:
    python tools/benchmarks/step_time.py --batch-size 32 --threads 2
"""
import argparse
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS

import ssql_mm  # noqa: F401  (registers the SSQL algorithms)
from ssql_mm.quantization import set_bits

# name -> (float baseline config, SSQL config)
PAIRS: Dict[str, Tuple[str, str]] = {
    'simsiam': (
        'configs/baselines/simsiam_resnet18_4xb128-coslr-400e_cifar10.py',
        'configs/ssql/ssql-simsiam_resnet18_4xb128-coslr-400e_cifar10.py'),
    'byol': (
        'configs/baselines/byol_resnet18_4xb128-coslr-400e_cifar10.py',
        'configs/ssql/ssql-byol_resnet18_4xb128-coslr-400e_cifar10.py'),
    'mocov2': (
        'configs/baselines/mocov2_resnet18_4xb128-coslr-400e_cifar10.py',
        'configs/ssql/ssql-mocov2_resnet18_4xb128-coslr-400e_cifar10.py'),
}


def build_step(config: str, views: List[torch.Tensor],
               bits: tuple) -> Callable[[], float]:
    """Build the model of ``config`` and return a function timing one step."""
    model = MODELS.build(Config.fromfile(config).model).train()
    set_bits(model, *bits)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> float:
        start = time.perf_counter()
        losses = model.loss(views, None)
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return time.perf_counter() - start

    return step


def measure(pair: str, batch_size: int, size: int, steps: int, warmup: int,
            bits: tuple) -> Tuple[float, float]:
    """Median step times of a pair's baseline and SSQL model, alternating.

    Args:
        pair (str): A key of :data:`PAIRS`.
        batch_size (int): Images per view (MoCo v2 needs a divisor of its
            queue length, 4096).
        size (int): Image side.
        steps (int): Timed steps per model.
        warmup (int): Untimed steps per model first.
        bits (tuple): ``(w_bits, a_bits)`` of the SSQL model.

    Returns:
        tuple[float, float]: Median seconds per step of the baseline and of
        SSQL.
    """
    init_default_scope('mmpretrain')
    # BYOL's cosine momentum schedule reads the run length from here.
    MessageHub.get_current_instance().update_info('max_iters', warmup + steps)
    torch.manual_seed(0)
    views = [torch.randn(batch_size, 3, size, size) for _ in range(2)]
    step_fns = [build_step(cfg, views, bits) for cfg in PAIRS[pair]]
    times: List[List[float]] = [[], []]
    for i in range(warmup + steps):
        for timings, step in zip(times, step_fns):
            elapsed = step()
            if i >= warmup:
                timings.append(elapsed)
    baseline, ssql = (statistics.median(ts) for ts in times)
    return baseline, ssql


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--pairs', nargs='+', choices=sorted(PAIRS),
                        default=list(PAIRS), help='algorithms to time '
                        '(default: all)')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--size', type=int, default=32)
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--w-bits', type=int, default=4)
    parser.add_argument('--a-bits', type=int, default=4)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f'CIFAR ResNet-18, batch {args.batch_size}, {args.size}x{args.size}, '
          f'{args.threads} threads, {args.w_bits}w{args.a_bits}a, median of '
          f'{args.steps} steps')
    print(f"{'pair':<8} {'baseline':>10} {'SSQL':>10} {'SSQL/baseline':>14}")
    for pair in args.pairs:
        baseline, ssql = measure(pair, args.batch_size, args.size, args.steps,
                                 args.warmup, (args.w_bits, args.a_bits))
        print(f'{pair:<8} {baseline:>9.3f}s {ssql:>9.3f}s '
              f'{ssql / baseline:>13.2f}x')


if __name__ == '__main__':
    main()
