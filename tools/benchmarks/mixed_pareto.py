"""Mixed precision vs uniform bits from one checkpoint: accuracy vs cost.

For every checkpoint and sensitivity method, one sensitivity pass and one
bit search per budget (``ssql_mm.evaluation.search_bits_per_budget``) write
a bits file; then every checkpoint is swept (kNN and linear probe, the model
zoo's protocol) at FP, at the uniform settings and at each bits file. The
summary puts each setting's BOPs and weight bytes beside its accuracy, and
compares mixed with uniform at the budgets that are uniform settings.

The search draws its calibration images (``--search-images``, seed 0) from
the training images outside the kNN bank, as the sweep's calibration does.

Resumable by stage: a checkpoint's bits files, and each sweep (uniform, one
per method), are skipped once written; sweeps run ``--jobs`` at a time.

Example:
    python tools/benchmarks/mixed_pareto.py --data ../shared/data/cifar10 \\
        --checkpoints simsiam_seed0=A.pth ssql_seed0=B.pth
"""
import argparse
import json
import os
import os.path as osp
import re
import sys
import time
from typing import Dict, List, Sequence

import torch
from repro_cifar10 import run_streams, sweep_data

from ssql_mm.apis import resolve_checkpoint
from ssql_mm.checkpoint import report_errors
from ssql_mm.models.bit_setting import parse_bit_setting, save_bit_setting
from ssql_mm.quantization.sensitivity import SENSITIVITY_METHODS

_NAME = re.compile(r'^[\w.-]+$')
_BUDGET = re.compile(r'^(bops|size|avg-bits)=(\d+)/(\d+)$')


def budget_tag(budget: str) -> str:
    """File-name form of a budget: ``'bops=3/3'`` -> ``'bops-3w3a'``."""
    kind, w, a = _BUDGET.match(budget).groups()
    return f'{kind}-{w}w{a}a'


def parse_args(argv: Sequence[str] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', default='../shared/data/cifar10',
                        help='folder with train/test class folders or '
                        'train.tar.gz / test.tar.gz')
    parser.add_argument('--work', default='work_dirs/mixed_pareto')
    parser.add_argument('--checkpoints', nargs='+', required=True,
                        metavar='NAME=PATH',
                        help='checkpoint files or model-zoo names')
    parser.add_argument('--methods', nargs='+', choices=SENSITIVITY_METHODS,
                        default=list(SENSITIVITY_METHODS))
    parser.add_argument('--budgets', nargs='+',
                        default=['bops=2/4', 'bops=3/3', 'bops=3/4',
                                 'bops=4/4', 'bops=6/6'],
                        help='KIND=W/A: the cost of that uniform setting '
                        '(KIND bops, size or avg-bits)')
    parser.add_argument('--uniform', nargs='+',
                        default=['8/8', '6/6', '4/4', '3/4', '3/3', '2/4'],
                        help='uniform settings swept beside the bits files')
    parser.add_argument('--search-images', type=int, default=256)
    parser.add_argument('--jobs', type=int, default=2)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--summary-only', action='store_true',
                        help='tabulate what is finished, run nothing')
    args = parser.parse_args(argv)
    checkpoints = {}
    for item in args.checkpoints:
        name, sep, path = item.partition('=')
        if not sep or not path or not _NAME.match(name):
            parser.error(f'--checkpoints {item!r}: write NAME=PATH, NAME of '
                         'letters, digits, ".", "-" and "_".')
        checkpoints[name] = path
    args.checkpoints = checkpoints
    for budget in args.budgets:
        if not _BUDGET.match(budget):
            parser.error(f'--budgets {budget!r}: write KIND=W/A, e.g. '
                         'bops=3/3.')
    for text in args.uniform:
        try:
            setting = parse_bit_setting(text)
        except ValueError as err:
            parser.error(f'--uniform: {err}')
        if setting.is_mixed or setting.is_float:
            parser.error(f'--uniform {text!r}: give a W/A setting.')
    if args.search_images < 1 or args.jobs < 1 or args.threads < 1:
        parser.error('--search-images, --jobs and --threads must be >= 1')
    return args


def bits_file(args: argparse.Namespace, name: str, method: str,
              budget: str) -> str:
    """Where the bits file of one checkpoint, method and budget goes."""
    return osp.join(args.work, name, 'bits',
                    f'{method}_{budget_tag(budget)}.yml')


def search_record(args: argparse.Namespace, name: str, method: str) -> str:
    """JSON with the costs and search times of one checkpoint and method."""
    return osp.join(args.work, name, 'bits', f'{method}_search.json')


def calibration_pool(data: str, count: int) -> torch.Tensor:
    """``count`` training images outside the kNN bank (seed 0)."""
    from ssql_mm.evaluation import load_split
    from ssql_mm.evaluation.sweep import ZOO_PROTOCOL, split_bank
    _, pool = split_bank(load_split(osp.join(data, 'train')),
                         ZOO_PROTOCOL['train_per_class'])
    order = torch.randperm(len(pool),
                           generator=torch.Generator().manual_seed(0))
    return pool[order[:count]]


def stage_search(args: argparse.Namespace, data: str) -> None:
    """Write every missing bits file (one sensitivity pass per checkpoint
    and method) and its search record."""
    from ssql_mm.evaluation.mixed_precision import (SearchOptions,
                                                    search_bits_per_budget)
    todo = [(n, m) for n in args.checkpoints for m in args.methods
            if not osp.isfile(search_record(args, n, m))]
    if not todo:
        return
    torch.set_num_threads(args.threads)
    images = calibration_pool(data, args.search_images)
    for name, method in todo:
        print(f'[mixed] search {name} ({method}), {len(args.budgets)} '
              'budgets', flush=True)
        start = time.perf_counter()
        results = search_bits_per_budget(
            args.checkpoints[name], [[b] for b in args.budgets], images,
            SearchOptions(method=method, seed=0))
        record = dict(
            checkpoint=args.checkpoints[name], method=method,
            seconds=dict(sensitivity=results[0].seconds['sensitivity'],
                         allocation=[r.seconds['allocation']
                                     for r in results],
                         total=time.perf_counter() - start),
            references=results[0].references, settings={})
        for budget, result in zip(args.budgets, results):
            path = bits_file(args, name, method, budget)
            os.makedirs(osp.dirname(path), exist_ok=True)
            save_bit_setting(result.setting, path, result.info())
            record['settings'][parse_bit_setting(f'mixed:{path}').name] = dict(
                budget=budget, cost=result.info()['cost'])
        with open(search_record(args, name, method), 'w') as f:
            json.dump(record, f, indent=1)
        print(f'[mixed] search {name} ({method}): '
              f"{record['seconds']['total']:.0f} s", flush=True)


def sweep_out(args: argparse.Namespace, name: str, group: str) -> str:
    """Output folder of one sweep (``group``: 'uniform' or a method)."""
    return osp.join(args.work, name, f'sweep_{group}')


def stage_sweep(args: argparse.Namespace, data: str) -> None:
    """Sweep each checkpoint at FP and the uniform settings, and at each
    method's bits files, skipping finished sweeps."""
    jobs = []
    for name, ckpt in args.checkpoints.items():
        groups = {'uniform': ['fp', *args.uniform]}
        for method in args.methods:
            groups[method] = [f'mixed:{bits_file(args, name, method, b)}'
                              for b in args.budgets]
        for group, bits in groups.items():
            out = sweep_out(args, name, group)
            if osp.isfile(osp.join(out, 'bit_sweep.json')):
                continue
            cmd = [sys.executable, 'tools/bit_sweep.py', ckpt, '--data', data,
                   '--preset', 'zoo', '--bits', *bits, '--out', out]
            jobs.append((f'sweep {name} ({group})', cmd, f'{out}.log'))
    streams: List[list] = [[] for _ in range(args.jobs)]
    for i, job in enumerate(jobs):
        os.makedirs(osp.dirname(job[2]), exist_ok=True)
        streams[i % args.jobs].append(job)
    run_streams([s for s in streams if s], args.threads)


def search_records(args: argparse.Namespace) -> Dict[tuple, dict]:
    """The finished searches' records, by ``(checkpoint name, method)``."""
    records = {}
    for name in args.checkpoints:
        for method in args.methods:
            path = search_record(args, name, method)
            if osp.isfile(path):
                with open(path) as f:
                    records[(name, method)] = json.load(f)
    return records


def collect(args: argparse.Namespace,
            records: Dict[tuple, dict]) -> Dict[str, dict]:
    """``rows[name][setting]`` = dict(bops, size, knn, linear, kind) from
    the finished searches (``records``) and sweeps."""
    rows: Dict[str, dict] = {}
    for name in args.checkpoints:
        costs: Dict[str, dict] = {}
        budgets: Dict[str, str] = {}
        for method in args.methods:
            record = records.get((name, method))
            if record is None:
                continue
            for text, cost in record['references'].items():
                costs[parse_bit_setting(text).name] = cost
            for setting, item in record['settings'].items():
                costs[setting] = item['cost']
                budgets[setting] = item['budget']
        for group in ['uniform'] + list(args.methods):
            path = osp.join(sweep_out(args, name, group), 'bit_sweep.json')
            if not osp.isfile(path):
                continue
            with open(path) as f:
                res = json.load(f)
            knn = next(iter(res['knn'].values()))
            linear = next(iter(res['linear'].values()))
            for setting in knn:
                cost = costs.get(setting, {})
                rows.setdefault(name, {})[setting] = dict(
                    kind=group, budget=budgets.get(setting),
                    bops=cost.get('bops'), size=cost.get('size'),
                    knn=knn[setting], linear=linear.get(setting))
    return rows


def _num(value, scale: float, digits: int = 2) -> str:
    return '' if value is None else f'{value / scale:.{digits}f}'


def summarize(args: argparse.Namespace, rows: Dict[str, dict],
              seconds: Dict[str, dict]) -> str:
    """Markdown: every setting with its cost, mixed minus uniform at equal
    budgets, and what the searches cost."""
    lines = ['Costs: BOPs = sum of MACs x weight bits x input bits (G); '
             'size = weight bytes (KiB).', '']
    for name, table in rows.items():
        lines += [f'**{name}**', '',
                  '| setting | kind | GBOPs | size KiB | kNN | linear |',
                  '|---|---|---:|---:|---:|---:|']
        order = sorted(table.items(), key=lambda kv: (
            kv[1]['bops'] if kv[1]['bops'] is not None else float('inf')))
        for setting, row in order:
            lines.append(
                f"| {setting} | {row['kind']} | {_num(row['bops'], 1e9)} | "
                f"{_num(row['size'], 1024, 1)} | {row['knn']:.2f} | "
                f"{row['linear']:.2f} |")
        lines.append('')
    lines += ["Mixed − uniform at the uniform setting's cost (kNN / linear):",
              '', '| checkpoint | budget | ' + ' | '.join(args.methods) + ' |',
              '|---|---|' + '---:|' * len(args.methods)]
    for name, table in rows.items():
        for budget in args.budgets:
            uniform = parse_bit_setting(budget.split('=')[1]).name
            base = table.get(uniform)
            cells = []
            for method in args.methods:
                mixed = table.get(f'mixed:{method}_{budget_tag(budget)}')
                cells.append('' if not (base and mixed) else
                             f"{mixed['knn'] - base['knn']:+.2f} / "
                             f"{mixed['linear'] - base['linear']:+.2f}")
            lines.append(f'| {name} | {budget} | ' + ' | '.join(cells) + ' |')
    lines += ['', 'Search time (s): sensitivity pass, then all allocations:',
              '', '| checkpoint | method | sensitivity | allocations |',
              '|---|---|---:|---:|']
    for (name, method), sec in seconds.items():
        lines.append(f"| {name} | {method} | {sec['sensitivity']:.0f} | "
                     f"{sum(sec['allocation']):.1f} |")
    return '\n'.join(lines)


def plot(rows: Dict[str, dict], path: str) -> None:
    """kNN and linear top-1 vs GBOPs and vs size, one line per checkpoint
    and kind."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for (metric, cost, scale, unit), ax in zip(
            [(m, c, s, u) for m in ('knn', 'linear')
             for c, s, u in (('bops', 1e9, 'GBOPs'), ('size', 1024, 'KiB'))],
            axes.flat):
        for name, table in rows.items():
            kinds: Dict[str, list] = {}
            for row in table.values():
                if row[cost] is not None:
                    kinds.setdefault(row['kind'], []).append(
                        (row[cost] / scale, row[metric]))
            for kind, points in kinds.items():
                points.sort()
                ax.plot(*zip(*points), marker='o' if kind == 'uniform' else
                        'x', label=f'{name} {kind}')
        ax.set_xscale('log')
        ax.set_xlabel(unit)
        ax.set_ylabel(f'{metric} top-1 (%)')
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    args = parse_args()
    with report_errors('mixed_pareto'):
        data = sweep_data(args)
        if not args.summary_only:
            args.checkpoints = {name: resolve_checkpoint(path)
                                for name, path in args.checkpoints.items()}
            stage_search(args, data)
            stage_sweep(args, data)
        records = search_records(args)
        rows = collect(args, records)
        text = summarize(args, rows, {key: record['seconds']
                                      for key, record in records.items()})
        os.makedirs(args.work, exist_ok=True)
        with open(osp.join(args.work, 'summary.md'), 'w') as f:
            f.write(text + '\n')
        with open(osp.join(args.work, 'summary.json'), 'w') as f:
            json.dump(rows, f, indent=1)
        if rows:
            plot(rows, osp.join(args.work, 'summary.png'))
        print(text)


if __name__ == '__main__':
    main()
