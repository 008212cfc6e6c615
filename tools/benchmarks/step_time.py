"""SSQL step time relative to its float algorithm, measured in one run.

For each pair (SimSiam, BYOL, MoCo v2) both models are built from the
CIFAR-10 ResNet-18 configs (identical except for the algorithm) and trained
on the same batch; steps alternate between the two so that machine load
affects both alike. A step is forward, backward and an SGD update. Prints
the median times and their ratio per pair and quantizer placement, each SSQL
step at fixed bits or at bits drawn per step as in training
(``--random-bits``); ``--profile`` adds the operators an SSQL step spends
its time in.

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
from ssql_mm.checkpoint import report_errors
from ssql_mm.models.backbones import PLACEMENTS
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


def build_step(config: str, views: List[torch.Tensor], bits: tuple,
               placement: str, random_bits: bool) -> Callable[[], float]:
    """Build the model of ``config`` and return a function timing one step.

    With ``random_bits`` each step first draws weight bits in 2-8 and
    activation bits in 4-8, as ``QuantHook`` does in training.
    """
    model_cfg = Config.fromfile(config).model
    if 'quant_cfg' in model_cfg:
        model_cfg.quant_cfg = dict(model_cfg.quant_cfg, placement=placement)
    model = MODELS.build(model_cfg).train()
    set_bits(model, *bits)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    draws = torch.Generator().manual_seed(0)

    def step() -> float:
        if random_bits:
            set_bits(model, int(torch.randint(2, 9, (), generator=draws)),
                     int(torch.randint(4, 9, (), generator=draws)))
        start = time.perf_counter()
        losses = model.loss(views, None)
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return time.perf_counter() - start

    return step


def measure(pair: str, batch_size: int, size: int, steps: int, warmup: int,
            bits: tuple, placement: str = 'inputs',
            random_bits: bool = False) -> Tuple[float, float]:
    """Median step times of a pair's baseline and SSQL model, alternating.

    Args:
        pair (str): A key of :data:`PAIRS`.
        batch_size (int): Images per view (MoCo v2 needs a divisor of its
            queue length, 4096).
        size (int): Image side.
        steps (int): Timed steps per model.
        warmup (int): Untimed steps per model first.
        bits (tuple): ``(w_bits, a_bits)`` of the SSQL model.
        placement (str): Quantizer placement of the SSQL model.
        random_bits (bool): Draw the SSQL bits per step.

    Returns:
        tuple[float, float]: Median seconds per step of the baseline and of
        SSQL.
    """
    init_default_scope('mmpretrain')
    # BYOL's cosine momentum schedule reads the run length from here.
    MessageHub.get_current_instance().update_info('max_iters', warmup + steps)
    torch.manual_seed(0)
    views = [torch.randn(batch_size, 3, size, size) for _ in range(2)]
    step_fns = [build_step(cfg, views, bits, placement, random_bits)
                for cfg in PAIRS[pair]]
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
    parser.add_argument('--random-bits', action='store_true',
                        help='draw the SSQL bits per step (w 2-8, a 4-8)')
    parser.add_argument('--placements', nargs='+', choices=PLACEMENTS,
                        default=list(PLACEMENTS))
    parser.add_argument('--profile', action='store_true',
                        help='also profile a few SSQL-SimSiam steps per '
                        'placement and print the top operators')
    return parser.parse_args(argv)


def profile_ssql(placement: str, batch_size: int, size: int, bits: tuple,
                 rows: int = 12) -> str:
    """The operators an SSQL-SimSiam step spends its time in (self CPU)."""
    from torch.profiler import ProfilerActivity, profile
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    views = [torch.randn(batch_size, 3, size, size) for _ in range(2)]
    step = build_step(PAIRS['simsiam'][1], views, bits, placement, False)
    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            step()
    return prof.key_averages().table(sort_by='self_cpu_time_total',
                                     row_limit=rows)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    bits = 'bits drawn per step' if args.random_bits else (
        f'{args.w_bits}w{args.a_bits}a')
    with report_errors('step_time'):
        print(f'CIFAR ResNet-18, batch {args.batch_size}, '
              f'{args.size}x{args.size}, {args.threads} threads, {bits}, '
              f'median of {args.steps} steps')
        print(f"{'pair':<8} {'placement':<10} {'baseline':>10} {'SSQL':>10} "
              f"{'SSQL/baseline':>14}")
        for pair in args.pairs:
            for placement in args.placements:
                baseline, ssql = measure(pair, args.batch_size, args.size,
                                         args.steps, args.warmup,
                                         (args.w_bits, args.a_bits),
                                         placement, args.random_bits)
                print(f'{pair:<8} {placement:<10} {baseline:>9.3f}s '
                      f'{ssql:>9.3f}s {ssql / baseline:>13.2f}x')
        if args.profile:
            for placement in args.placements:
                print(f'\nSSQL-SimSiam step, placement {placement}:')
                print(profile_ssql(placement, args.batch_size, args.size,
                                   (args.w_bits, args.a_bits)))


if __name__ == '__main__':
    main()
