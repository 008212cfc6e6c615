"""CIFAR-10 reproduction of SSQL's bit-width robustness, sized for a CPU.

Pretrains SimSiam and SSQL-SimSiam (identical except for the algorithm; or
the BYOL / MoCo v2 pairs with ``--methods byol ssql-byol``) on all 50,000
CIFAR-10 training images for two seeds each, then evaluates every
checkpoint and a random-init backbone at FP, 8w8a, 4w4a, 3w3a and 2w4a with
the bit sweep (kNN and linear probe on frozen features; bank from training
images disjoint from the calibration images; all 10,000 test images).

``--placements`` trains the SSQL methods with each quantizer placement
(``inputs``, ``paper``, ``integer``; runs other than ``inputs`` are named
``ssql-integer_seed0`` and so on); the baselines never quantize while
training, so they are trained once. ``--sweep-placements`` evaluates every
checkpoint under each placement (``sweep/`` for ``inputs``,
``sweep-<placement>/`` otherwise), and ``--extra NAME=PATH`` adds other
checkpoints (e.g. model-zoo files) to the sweeps.

Stages are resumable: a finished run (its last checkpoint exists) or sweep
(its JSON exists) is skipped, an interrupted run resumes from its latest
checkpoint. Runs go ``--jobs`` at a time, one thread each.

Example:
    python tools/benchmarks/repro_cifar10.py --data ../shared/data/cifar10
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import threading
import time
from typing import Dict, List, Sequence, Tuple

from ssql_mm.checkpoint import report_errors
from ssql_mm.models.backbones import DEFAULT_PLACEMENT, PLACEMENTS

CONFIGS = {
    'simsiam': 'configs/baselines/simsiam_resnet18-w16_1xb128-coslr-2500it_cifar10.py',
    'ssql': 'configs/ssql/ssql-simsiam_resnet18-w16_1xb128-coslr-2500it_cifar10.py',
    'byol': 'configs/baselines/byol_resnet18-w16_1xb128-coslr-2500it_cifar10.py',
    'ssql-byol': 'configs/ssql/ssql-byol_resnet18-w16_1xb128-coslr-2500it_cifar10.py',
    'mocov2': 'configs/baselines/mocov2_resnet18-w16_1xb128-coslr-2500it_cifar10.py',
    'ssql-mocov2': 'configs/ssql/ssql-mocov2_resnet18-w16_1xb128-coslr-2500it_cifar10.py',
}
CACHE = 'data/cache/cifar10_arrays'
BASELINES = {'ssql': 'simsiam', 'ssql-byol': 'byol',
             'ssql-mocov2': 'mocov2'}
# Approximate step time relative to SimSiam (SSQL about 2x its baseline,
# see ``make benchmark``); used only to balance runs across ``--jobs``.
RELATIVE_COST = {'simsiam': 1.0, 'byol': 1.2, 'mocov2': 1.1,
                 'ssql': 2.3, 'ssql-byol': 2.3, 'ssql-mocov2': 2.2}
SWEEP_BITS = ['fp', '8/8', '4/4', '3/3', '2/4']
RANDOM_INIT = 'random_init'


def run_label(method: str, placement: str = 'inputs') -> str:
    """Name of a method trained with a quantizer placement: the method
    itself for baselines and for the ``inputs`` placement."""
    if method not in BASELINES or placement == 'inputs':
        return method
    return f'{method}-{placement}'


def run_name(method: str, seed: int, placement: str = 'inputs') -> str:
    """Work-dir name of one pretraining run."""
    return f'{run_label(method, placement)}_seed{seed}'


def training_runs(methods: Sequence[str],
                  placements: Sequence[str]) -> List[Tuple[str, str]]:
    """``(method, placement)`` of every run per seed: SSQL methods once per
    placement, baselines (never quantized while training) once."""
    return [(m, p) for m in methods
            for p in (placements if m in BASELINES else ['inputs'])]


def final_checkpoint(work: str, method: str, seed: int, iters: int,
                     placement: str = 'inputs') -> str:
    """Path of the checkpoint a finished run leaves."""
    return osp.join(work, run_name(method, seed, placement),
                    f'iter_{iters}.pth')


def train_command(args: argparse.Namespace, method: str, seed: int,
                  placement: str = 'inputs') -> List[str]:
    """The ``tools/train.py`` command line of one run."""
    work_dir = osp.join(args.work, run_name(method, seed, placement))
    cmd = [
        sys.executable, 'tools/train.py', CONFIGS[method], '--work-dir',
        work_dir, '--cfg-options', f'train_dataloader.dataset.data_root={args.data}',
        f'train_dataloader.dataset.cache_dir={CACHE}', f'randomness.seed={seed}',
        f'train_cfg.max_iters={args.iters}', f'param_scheduler.0.T_max={args.iters}',
        f'param_scheduler.0.end={args.iters}'
    ] + [f'{k}={v}' for k, v in size_options(args).items()]
    if method in BASELINES:
        cmd.append(f'model.quant_cfg.placement={placement}')
    if osp.isfile(osp.join(work_dir, 'last_checkpoint')):
        cmd.append('--resume')
    return cmd


def size_options(args: argparse.Namespace) -> Dict[str, object]:
    """Config overrides for a width, head size or batch other than the
    configs' (e.g. the paper's full-width model on a GPU)."""
    opts: Dict[str, object] = {}
    if args.width is not None:
        opts.update({'model.backbone.stem_channels': args.width,
                     'model.backbone.base_channels': args.width,
                     'model.neck.in_channels': args.width * 8})
    if args.head_dim is not None:
        opts.update({'model.neck.hid_channels': args.head_dim,
                     'model.neck.out_channels': args.head_dim,
                     'model.head.predictor.in_channels': args.head_dim,
                     'model.head.predictor.out_channels': args.head_dim})
    if args.pred_hidden is not None:
        opts['model.head.predictor.hid_channels'] = args.pred_hidden
    if args.batch_size is not None:
        # SGD lr 0.05 per 256 images, as in the configs.
        opts.update({'train_dataloader.batch_size': args.batch_size,
                     'optim_wrapper.optimizer.lr': 0.05 * args.batch_size / 256})
    return opts


_SAY = threading.Lock()


def say(message: str) -> None:
    """Print one whole line, also from several threads at once."""
    with _SAY:
        sys.stdout.write(message + '\n')
        sys.stdout.flush()


def run_streams(streams: Sequence[Sequence[Tuple[str, List[str], str]]],
                threads: int) -> None:
    """Run each stream's commands in order, streams side by side.

    Args:
        streams: Per stream, ``(name, command, log file)`` triples.
        threads (int): Torch threads per command.
    """
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    failures: List[str] = []

    def worker(stream):
        for name, cmd, log in stream:
            start = time.time()
            say(f'[repro] {name}: started ({" ".join(cmd[1:3])} ...)')
            with open(log, 'a') as f:
                rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT,
                                     env=env)
            took = (time.time() - start) / 60
            if rc:
                failures.append(f'{name} (exit {rc}, see {log})')
                say(f'[repro] {name}: FAILED after {took:.1f} min')
                return
            say(f'[repro] {name}: done in {took:.1f} min')

    workers = [threading.Thread(target=worker, args=(s, )) for s in streams]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if failures:
        sys.exit('repro: failed runs: ' + '; '.join(failures))


def run_jobs(jobs: Sequence[Tuple[str, List[str], str]], streams: int,
             threads: int) -> None:
    """Run ``(name, command, log file)`` jobs dealt in turn to ``streams``
    streams side by side, each job's log folder made first.

    Args:
        jobs: The jobs, in the order each stream takes them.
        streams (int): Number of streams.
        threads (int): Torch threads per command.
    """
    dealt: List[list] = [[] for _ in range(streams)]
    for i, job in enumerate(jobs):
        dealt[i % streams].append(job)
        os.makedirs(osp.dirname(job[2]) or '.', exist_ok=True)
    run_streams([s for s in dealt if s], threads)


def balance_streams(runs: Sequence[tuple], jobs: int) -> List[list]:
    """Deal runs to at most ``jobs`` streams, longest first, each to the
    least loaded stream.

    Args:
        runs (Sequence[tuple]): ``(name, command, log, method)`` per run.
        jobs (int): Number of streams run side by side.

    Returns:
        list[list]: Per stream, its ``(name, command, log)`` in order.
    """
    streams: List[list] = [[] for _ in range(max(1, jobs))]
    loads = [0.0] * len(streams)
    for name, cmd, log, method in sorted(
            runs, key=lambda run: -RELATIVE_COST[run[3]]):
        i = loads.index(min(loads))
        streams[i].append((name, cmd, log))
        loads[i] += RELATIVE_COST[method]
    return streams


def stage_train(args: argparse.Namespace) -> Dict[str, str]:
    """Pretrain every (method, placement, seed); return their final
    checkpoints."""
    from ssql_mm.datasets import load_cifar10_arrays
    for split in ('train', 'test'):
        load_cifar10_arrays(args.data, split, CACHE)
    os.makedirs(args.work, exist_ok=True)
    pairs = training_runs(args.methods, args.placements)
    runs = []
    for seed in args.seeds:
        for method, placement in pairs:
            name = run_name(method, seed, placement)
            if osp.isfile(final_checkpoint(args.work, method, seed, args.iters,
                                           placement)):
                print(f'[repro] {name}: finished earlier, skipped', flush=True)
                continue
            runs.append((name, train_command(args, method, seed, placement),
                         osp.join(args.work, f'{name}.log'), method))
    streams = balance_streams(runs, args.jobs)
    run_streams([s for s in streams if s], args.threads)
    return {run_name(m, s, p): final_checkpoint(args.work, m, s, args.iters, p)
            for s in args.seeds for m, p in pairs}


def random_init_checkpoint(args: argparse.Namespace) -> str:
    """Save the untrained model (seed 0) in MMEngine's layout: the floor."""
    path = osp.join(args.work, f'{RANDOM_INIT}.pth')
    if osp.isfile(path):
        return path
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import set_random_seed
    from mmpretrain.registry import MODELS

    import ssql_mm  # noqa: F401
    cfg = Config.fromfile(CONFIGS['simsiam'])
    cfg.merge_from_dict(size_options(args))
    init_default_scope('mmpretrain')
    set_random_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    tmp = f'{path}.partial'
    torch.save({'meta': {'cfg': cfg.pretty_text, 'seed': 0, 'iter': 0},
                'state_dict': model.state_dict()}, tmp)
    os.replace(tmp, path)
    return path


def sweep_data(args: argparse.Namespace) -> str:
    """A folder with train/ and test/ class folders for the sweep."""
    if osp.isdir(osp.join(args.data, 'train')):
        return args.data
    from ssql_mm.datasets import extract_cifar10
    return extract_cifar10(args.data, 'data/cache')


def sweep_dir(work: str, placement: str, name: str) -> str:
    """Output folder of one checkpoint's sweep under one placement."""
    folder = 'sweep' if placement == 'inputs' else f'sweep-{placement}'
    return osp.join(work, folder, name)


def stage_sweep(args: argparse.Namespace, checkpoints: Dict[str, str]
                ) -> Dict[str, Dict[str, dict]]:
    """Sweep every checkpoint under every sweep placement (skipping
    finished ones); return their JSON per placement and run."""
    data = sweep_data(args)
    checkpoints = dict(checkpoints, **{RANDOM_INIT: random_init_checkpoint(args)})
    streams: List[list] = [[] for _ in range(max(1, args.jobs))]
    jobs = [(p, name, ckpt) for p in args.sweep_placements
            for name, ckpt in checkpoints.items()]
    for i, (placement, name, ckpt) in enumerate(jobs):
        out = sweep_dir(args.work, placement, name)
        label = f'sweep {name} ({placement})'
        if osp.isfile(osp.join(out, 'bit_sweep.json')):
            print(f'[repro] {label}: finished earlier, skipped', flush=True)
            continue
        cmd = [sys.executable, 'tools/bit_sweep.py', ckpt, '--data', data,
               '--bits', *SWEEP_BITS, '--train-per-class',
               str(args.bank_per_class), '--placement', placement,
               '--out', out]
        log = osp.join(args.work, f'sweep_{name}_{placement}.log')
        streams[i % len(streams)].append((label, cmd, log))
    run_streams([s for s in streams if s], args.threads)
    results: Dict[str, Dict[str, dict]] = {}
    for placement, name, _ in jobs:
        path = osp.join(sweep_dir(args.work, placement, name),
                        'bit_sweep.json')
        with open(path) as f:
            results.setdefault(placement, {})[name] = json.load(f)
    return results


def summarize(args: argparse.Namespace, results: Dict[str, dict],
              placement: str = 'inputs') -> str:
    """Per-seed and mean tables (Markdown), a plot and a JSON summary of
    the sweeps under one placement (``summary.*`` for ``inputs``,
    ``summary-<placement>.*`` otherwise)."""
    from ssql_mm.evaluation.aggregate import format_summary, seed_summary
    settings = results[RANDOM_INIT]['settings']
    runs_of = training_runs(args.methods, args.placements)
    groups = {run_label(m, p): [run_name(m, s, p) for s in args.seeds]
              for m, p in runs_of}
    groups.update({name: [name] for name in args.extra})
    groups[RANDOM_INIT] = [RANDOM_INIT]
    blocks, summary = [], {}
    for metric, title in (('knn', 'kNN top-1 (%)'),
                          ('linear', 'linear probe top-1 (%)')):
        scores = {run: res[metric][osp.splitext(osp.basename(
            res['meta']['checkpoints'][0]))[0]] for run, res in results.items()}
        runs = [r for g in groups.values() for r in g]
        lines = [f'**{title}, per run**', '', '| bits | ' + ' | '.join(runs)
                 + ' |', '|---|' + '---:|' * len(runs)]
        for s in settings:
            lines.append(f'| {s} | ' + ' | '.join(
                f'{scores[r][s]:.2f}' for r in runs) + ' |')
        summary[metric] = seed_summary(scores, groups, settings)
        blocks += ['\n'.join(lines), format_summary(
            summary[metric], settings,
            f'{title}, mean ± 95% CI over seeds {args.seeds}')]
        pairs = {f'{run_label(m, p)} − {BASELINES[m]}': (m, p, BASELINES[m])
                 for m, p in runs_of if BASELINES.get(m) in args.methods}
        if pairs:
            diffs = {
                label: seed_summary(
                    {s_: {b: scores[run_name(m, s_, p)][b] -
                          scores[run_name(base, s_)][b] for b in settings}
                     for s_ in args.seeds},
                    {label: list(args.seeds)}, settings)[label]
                for label, (m, p, base) in pairs.items()}
            blocks.append(format_summary(
                diffs, settings, f'{title}: SSQL − baseline, same seed, '
                'mean ± 95% CI'))
    text = f'Quantizer placement at evaluation: {placement}\n\n' + \
        '\n\n'.join(blocks)
    stem = osp.join(args.work, 'summary' if placement == 'inputs' else
                    f'summary-{placement}')
    with open(f'{stem}.md', 'w') as f:
        f.write(text + '\n')
    with open(f'{stem}.json', 'w') as f:
        json.dump(dict(placement=placement, settings=settings, groups=groups,
                       summary=summary,
                       per_run={m: {r: res[m] for r, res in results.items()}
                                for m in ('knn', 'linear')}), f, indent=2)
    plot_summary(summary, settings, f'{stem}.png')
    return text


def plot_summary(summary: dict, settings: Sequence[str], path: str) -> None:
    """kNN and linear top-1 against bits, mean with 95% CI per method."""
    import math

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(10, 3.8), tight_layout=True)
    FigureCanvasAgg(fig)
    x = list(range(len(settings)))
    for i, (metric, title) in enumerate((('knn', 'kNN top-1 (%)'),
                                         ('linear', 'linear top-1 (%)'))):
        ax = fig.add_subplot(1, 2, i + 1)
        for method, rows in summary[metric].items():
            means = [rows[s][0] for s in settings]
            errs = [0 if math.isnan(rows[s][1]) else rows[s][1]
                    for s in settings]
            ax.errorbar(x, means, yerr=errs, marker='o', capsize=3,
                        label=method)
        ax.set_xticks(x)
        ax.set_xticklabels(settings)
        ax.set_xlabel('bit setting')
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize='small')
    fig.savefig(path, format='png', dpi=120)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', default='../shared/data/cifar10',
                        help='folder with train/test class folders or '
                        'train.tar.gz / test.tar.gz')
    parser.add_argument('--work', default='work_dirs/repro_cifar10')
    parser.add_argument('--methods', nargs='+', default=['simsiam', 'ssql'],
                        choices=sorted(CONFIGS))
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1])
    parser.add_argument('--iters', type=int, default=2500)
    parser.add_argument('--jobs', type=int, default=2,
                        help='runs side by side')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads per run')
    parser.add_argument('--width', type=int,
                        help='ResNet stem/base channels (configs: 16; the '
                        'paper: 64)')
    parser.add_argument('--head-dim', type=int,
                        help='projector and predictor output size '
                        '(configs: 512; the paper: 2048)')
    parser.add_argument('--pred-hidden', type=int,
                        help='predictor hidden size (configs: 128; the '
                        'paper: 2048)')
    parser.add_argument('--batch-size', type=int,
                        help='batch size, lr scaled as 0.05 x batch / 256 '
                        '(configs: 128)')
    parser.add_argument('--bank-per-class', type=int, default=1000,
                        help='kNN bank / linear-probe training images per '
                        'class; calibration draws from the other ones')
    parser.add_argument('--placements', nargs='+', choices=PLACEMENTS,
                        default=[DEFAULT_PLACEMENT],
                        help='quantizer placements the SSQL methods are '
                        'trained with (default: %(default)s)')
    parser.add_argument('--sweep-placements', nargs='+', choices=PLACEMENTS,
                        help='placements every checkpoint is evaluated '
                        'under (default: those of --placements)')
    parser.add_argument('--extra', nargs='+', default=[], metavar='NAME=PATH',
                        help='more checkpoints to sweep and tabulate')
    parser.add_argument('--stage', choices=['train', 'all'], default='all')
    args = parser.parse_args()
    args.sweep_placements = args.sweep_placements or args.placements
    extra = {}
    for item in args.extra:
        name, sep, path = item.partition('=')
        if not sep or not name or not osp.isfile(path):
            parser.error(f'--extra {item!r}: write NAME=PATH with an existing '
                         'checkpoint file')
        extra[name] = path
    args.extra = extra
    return args


def main() -> None:
    args = parse_args()
    if args.iters < 1:
        sys.exit(f'repro: --iters must be >= 1, got {args.iters}.')
    start = time.time()
    checkpoints = stage_train(args)
    if args.stage == 'train':
        return
    results = stage_sweep(args, dict(checkpoints, **args.extra))
    with report_errors('repro'):
        for placement, placement_results in results.items():
            print('\n' + summarize(args, placement_results, placement))
        print(f'\n[repro] done in {(time.time() - start) / 60:.1f} min; '
              f'tables in {args.work}/summary*.md, plots in '
              f'{args.work}/summary*.png')


if __name__ == '__main__':
    main()
