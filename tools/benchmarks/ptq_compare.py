"""SimSiam vs SSQL after post-training quantization of increasing strength.

Every checkpoint is swept at FP once and at each low-bit setting with each
PTQ method, several times with different calibration draws (the draw seed
also seeds the linear probe):

- ``minmax``, ``mse``, ``mse-act``: calibration observers only (ranges;
  ``mse`` also clips the weights per channel, ``mse-act`` keeps
  ``max |w_c|``);
- ``adaround``, ``brecq``, ``qdrop``: reconstruction (``--ptq``) started
  from the MSE ranges and weight clipping.

Evaluation is the model zoo's protocol (kNN and linear probe on frozen
features; bank of the first 1,000 training images per class, calibration
from the others, all 10,000 test images) under one quantizer placement.
Checkpoints are named ``<method>_seed<N>``; ``ssql*`` runs are compared
with the ``simsiam`` run of the same seed.

Resumable: a finished sweep (its JSON exists) is skipped; sweeps run
``--jobs`` at a time, one thread each; the summary (``summary.md`` and
``summary.json``) is rewritten from all finished sweeps at the end.

Example:
    python tools/benchmarks/ptq_compare.py --data ../shared/data/cifar10 \\
        --checkpoints simsiam_seed0=A.pth ssql_seed0=B.pth \\
        simsiam_seed1=C.pth ssql_seed1=D.pth
"""
import argparse
import json
import os.path as osp
import re
import sys
from typing import Dict, List, Sequence, Tuple

from repro_cifar10 import run_jobs, sweep_data

from ssql_mm.checkpoint import report_errors
from ssql_mm.models.backbones import DEFAULT_PLACEMENT, PLACEMENTS
from ssql_mm.models.bit_setting import parse_bit_setting

# bit_sweep options of each method (reconstructions start from MSE ranges).
METHODS: Dict[str, List[str]] = {
    'minmax': ['--observer', 'minmax'],
    'mse': ['--observer', 'mse'],
    'mse-act': ['--observer', 'mse:weights=false'],
    'adaround': ['--observer', 'mse', '--ptq', 'adaround'],
    'brecq': ['--observer', 'mse', '--ptq', 'brecq'],
    'qdrop': ['--observer', 'mse', '--ptq', 'qdrop'],
}
RECONSTRUCTIONS = ('adaround', 'brecq', 'qdrop')
BASELINE = 'simsiam'
RUN_NAME = re.compile(r'^(?P<method>[\w.-]+?)_seed(?P<seed>\d+)$')


def parse_checkpoints(items: Sequence[str],
                      option: str = '--checkpoints') -> Dict[str, str]:
    """``NAME=PATH`` (or ``NAME=ZOO_MODEL``) pairs, names ``<method>_seed<N>``.

    Args:
        items (Sequence[str]): The command-line values.
        option (str): The option they came with, for the error message.
            Defaults to '--checkpoints'.

    Returns:
        dict: Checkpoint per name, in the given order.
    """
    out: Dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition('=')
        if not sep or not RUN_NAME.match(name) or not path:
            raise ValueError(f'{option} {item!r}: write NAME=PATH with '
                             'NAME like simsiam_seed0 or ssql_seed1.')
        out[name] = path
    return out


def pairs_of(names: Sequence[str]) -> List[Tuple[str, str]]:
    """``(ssql run, simsiam run)`` of the same seed, for every non-baseline
    run that has its baseline."""
    parsed = {n: RUN_NAME.match(n) for n in names}
    base = {m['seed']: n for n, m in parsed.items()
            if m['method'] == BASELINE}
    return [(n, base[m['seed']]) for n, m in parsed.items()
            if m['method'] != BASELINE and m['seed'] in base]


def sweep_jobs(args: argparse.Namespace, data: str
               ) -> List[Tuple[str, List[str], str, str]]:
    """Every sweep not finished yet: ``(label, command, log, method)``,
    draw by draw (every checkpoint and method at draw 0 first), so a run
    stopped early leaves complete comparisons of fewer draws."""
    common = ['--data', data, '--preset', 'zoo', '--placement',
              args.placement]
    jobs = []
    for name, ckpt in args.checkpoints.items():
        runs = [('fp', 0, ['--bits', 'fp'])]
        for method in args.methods:
            draws = (args.ptq_draws if method in RECONSTRUCTIONS else
                     args.draws)
            opts = list(METHODS[method])
            bits = args.bits
            if method in RECONSTRUCTIONS:
                bits = args.ptq_bits or args.bits
                if args.ptq_options:
                    opts[-1] += ':' + args.ptq_options
            runs += [(method, d, opts + ['--bits', *bits, '--seed', str(d)])
                     for d in range(draws)]
        for order, (method, draw, opts) in enumerate(runs):
            out = osp.join(args.work, name, f'{method}_draw{draw}')
            if osp.isfile(osp.join(out, 'bit_sweep.json')):
                continue
            cmd = [sys.executable, 'tools/bit_sweep.py', ckpt, *common,
                   *opts, '--out', out]
            jobs.append(((draw, order), (f'{name} {method} draw {draw}',
                                         cmd, f'{out}.log', method)))
    jobs.sort(key=lambda job: job[0])  # stable: checkpoints stay in order
    return [job for _, job in jobs]


def collect(args: argparse.Namespace) -> Dict[str, dict]:
    """``scores[metric][run][method][setting]`` = list over draws, from
    every finished sweep."""
    scores: Dict[str, dict] = {'knn': {}, 'linear': {}}
    for name in args.checkpoints:
        for method in ['fp'] + list(args.methods):
            for draw in range(max(args.draws, args.ptq_draws, 1)):
                path = osp.join(args.work, name, f'{method}_draw{draw}',
                                'bit_sweep.json')
                if not osp.isfile(path):
                    continue
                with open(path) as f:
                    res = json.load(f)
                for metric in scores:
                    column = next(iter(res[metric].values()))
                    for setting, value in column.items():
                        scores[metric].setdefault(name, {}).setdefault(
                            method, {}).setdefault(setting, []).append(value)
    return scores


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _cell(values: Sequence[float]) -> str:
    if not values:
        return '–'
    if len(values) == 1:
        return f'{values[0]:.2f}'
    return f'{_mean(values):.2f} ({min(values):.2f}–{max(values):.2f})'


def summarize(args: argparse.Namespace, scores: Dict[str, dict]) -> str:
    """Markdown tables: every run (mean and range over draws), SSQL −
    SimSiam per method, the best method per run, and how much of the
    baseline's FP → low-bit loss the best PTQ recovers."""
    names = list(args.checkpoints)
    methods = list(args.methods)
    settings = [parse_bit_setting(b).name for b in args.bits]
    ptq_bits = ' '.join(args.ptq_bits or args.bits)
    blocks = [f'Placement: {args.placement}; bits {" ".join(args.bits)} '
              f'(reconstructions: {ptq_bits}); draws: {args.draws} '
              f'(observers), {args.ptq_draws} (reconstructions).']
    summary: Dict[str, dict] = {}
    for metric, title in (('knn', 'kNN top-1 (%)'),
                          ('linear', 'linear probe top-1 (%)')):
        s = scores[metric]
        lines = [f'**{title}: mean (min–max over draws)**', '',
                 '| bits | method | ' + ' | '.join(names) + ' |',
                 '|---|---|' + '---:|' * len(names),
                 '| FP | – | ' + ' | '.join(
                     _cell(s.get(n, {}).get('fp', {}).get('FP', []))
                     for n in names) + ' |']
        for bits in settings:
            for method in methods:
                lines.append(f'| {bits} | {method} | ' + ' | '.join(
                    _cell(s.get(n, {}).get(method, {}).get(bits, []))
                    for n in names) + ' |')
        blocks.append('\n'.join(lines))
        best: Dict[str, Dict[str, Tuple[str, float]]] = {}
        for n in names:
            for bits in settings:
                means = {m: _mean(s[n][m][bits]) for m in methods
                         if s.get(n, {}).get(m, {}).get(bits)}
                if means:
                    m = max(means, key=means.get)
                    best.setdefault(n, {})[bits] = (m, means[m])
        pairs = pairs_of(names)
        if pairs:
            lines = [f'**{title}: SSQL − SimSiam, same seed and method '
                     '(mean over draws)**', '',
                     '| bits | method | ' + ' | '.join(
                         f'{a} − {b}' for a, b in pairs) + ' |',
                     '|---|---|' + '---:|' * len(pairs)]
            rows = [(bits, m) for bits in settings for m in methods]
            rows += [(bits, 'best') for bits in settings]
            for bits, m in rows:
                cells = []
                for a, b in pairs:
                    if m == 'best':
                        va = best.get(a, {}).get(bits)
                        vb = best.get(b, {}).get(bits)
                        cells.append('–' if not (va and vb) else
                                     f'{va[1] - vb[1]:+.2f} ({va[0]} vs '
                                     f'{vb[0]})')
                        continue
                    la = s.get(a, {}).get(m, {}).get(bits)
                    lb = s.get(b, {}).get(m, {}).get(bits)
                    cells.append('–' if not (la and lb) else
                                 f'{_mean(la) - _mean(lb):+.2f}')
                lines.append(f'| {bits} | {m} | ' + ' | '.join(cells) + ' |')
            blocks.append('\n'.join(lines))
        recovered = {}
        for n in names:
            fp = s.get(n, {}).get('fp', {}).get('FP')
            for bits in settings:
                low = s.get(n, {}).get('minmax', {}).get(bits)
                if fp and low and bits in best.get(n, {}):
                    loss = _mean(fp) - _mean(low)
                    gain = best[n][bits][1] - _mean(low)
                    recovered.setdefault(n, {})[bits] = (
                        gain / loss if loss > 0 else float('nan'))
        if recovered:
            lines = [f'**{title}: share of the FP → min/max loss recovered '
                     'by the best method**', '',
                     '| bits | ' + ' | '.join(names) + ' |',
                     '|---|' + '---:|' * len(names)]
            for bits in settings:
                lines.append(f'| {bits} | ' + ' | '.join(
                    f'{recovered[n][bits]:.0%}' if bits in recovered.get(
                        n, {}) else '–' for n in names) + ' |')
            blocks.append('\n'.join(lines))
        summary[metric] = dict(best=best, recovered=recovered)
    text = '\n\n'.join(blocks) + '\n'
    with open(osp.join(args.work, 'summary.md'), 'w') as f:
        f.write(text)
    with open(osp.join(args.work, 'summary.json'), 'w') as f:
        json.dump(dict(placement=args.placement, settings=settings,
                       checkpoints=args.checkpoints, scores=scores,
                       summary=summary), f, indent=2)
    return text


def parse_args(argv: Sequence[str] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', default='../shared/data/cifar10',
                        help='folder with train/test class folders or '
                        'train.tar.gz / test.tar.gz')
    parser.add_argument('--work', default='work_dirs/ptq_compare')
    parser.add_argument('--checkpoints', nargs='+', required=True,
                        metavar='NAME=PATH',
                        help='checkpoint files or model-zoo names, named '
                        '<method>_seed<N> (simsiam_seed0=...)')
    parser.add_argument('--methods', nargs='+', choices=list(METHODS),
                        default=list(METHODS))
    parser.add_argument('--bits', nargs='+', default=['4/4', '3/3', '2/4'])
    parser.add_argument('--draws', type=int, default=3,
                        help='calibration draws of the observers')
    parser.add_argument('--ptq-draws', type=int, default=2,
                        help='calibration draws of the reconstructions')
    parser.add_argument('--ptq-bits', nargs='+',
                        help='settings of the reconstructions (default: '
                        '--bits); the summary leaves the others empty')
    parser.add_argument('--ptq-options', default='',
                        help="extra method arguments, e.g. 'iters=200'")
    parser.add_argument('--placement', choices=PLACEMENTS,
                        default=DEFAULT_PLACEMENT)
    parser.add_argument('--jobs', type=int, default=2,
                        help='sweeps side by side')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads per sweep')
    parser.add_argument('--summary-only', action='store_true',
                        help='tabulate the finished sweeps, run nothing')
    args = parser.parse_args(argv)
    if args.draws < 1 or args.ptq_draws < 1 or args.jobs < 1:
        parser.error('--draws, --ptq-draws and --jobs must be >= 1')
    try:
        args.checkpoints = parse_checkpoints(args.checkpoints)
    except ValueError as err:
        parser.error(str(err))
    return args


def main() -> None:
    args = parse_args()
    if not args.summary_only:
        jobs = sweep_jobs(args, sweep_data(args))
        run_jobs([job[:3] for job in jobs], args.jobs, args.threads)
    with report_errors('ptq_compare'):
        print(summarize(args, collect(args)))


if __name__ == '__main__':
    main()
