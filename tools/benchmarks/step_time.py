"""SSQL-SimSiam step time relative to a SimSiam step, measured in one run.

Both models are built from the CIFAR-10 ResNet-18 configs (identical except
for the algorithm) and trained on the same batch; steps alternate between
the two so that machine load affects both alike. A step is forward, backward
and an SGD update. Prints the median times and their ratio.

Example:
    python tools/benchmarks/step_time.py --batch-size 32 --threads 2
"""
import argparse
import statistics
import time
from typing import Callable, Dict, List

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS

import ssql_mm  # noqa: F401  (registers SSQLSimSiam)
from ssql_mm.quantization import set_bits

CONFIGS = {
    'simsiam': 'configs/baselines/simsiam_resnet18_4xb128-coslr-400e_cifar10.py',
    'ssql': 'configs/ssql/ssql-simsiam_resnet18_4xb128-coslr-400e_cifar10.py',
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


def measure(batch_size: int, size: int, steps: int, warmup: int,
            bits: tuple) -> Dict[str, float]:
    """Median step time of each model, alternating steps.

    Returns:
        dict[str, float]: Median seconds per step for 'simsiam' and 'ssql'.
    """
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    views = [torch.randn(batch_size, 3, size, size) for _ in range(2)]
    step_fns = {name: build_step(cfg, views, bits) for name, cfg in CONFIGS.items()}
    times: Dict[str, List[float]] = {name: [] for name in CONFIGS}
    for i in range(warmup + steps):
        for name, step in step_fns.items():
            elapsed = step()
            if i >= warmup:
                times[name].append(elapsed)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--size', type=int, default=32)
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--w-bits', type=int, default=4)
    parser.add_argument('--a-bits', type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    med = measure(args.batch_size, args.size, args.steps, args.warmup,
                  (args.w_bits, args.a_bits))
    print(f'CIFAR ResNet-18, batch {args.batch_size}, {args.size}x{args.size}, '
          f'{args.threads} threads, {args.w_bits}w{args.a_bits}a, median of '
          f'{args.steps} steps')
    print(f"SimSiam step: {med['simsiam']:.3f} s")
    print(f"SSQL step:    {med['ssql']:.3f} s")
    print(f"SSQL / SimSiam: {med['ssql'] / med['simsiam']:.2f}x")


if __name__ == '__main__':
    main()
