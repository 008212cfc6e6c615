"""Downstream CIFAR-10: fine-tune every backbone, then deploy at any bits.

Every backbone (random init, and pretrained checkpoints named
``<method>_seed<N>``) is fine-tuned identically, with several fine-tuning
seeds, in up to six stages:

- ``cls``: float fine-tuning on 5,000 labelled CIFAR-10 training images
  disjoint from the model zoo's kNN bank, then post-training quantization
  (PTQ) of the backbone at every ``--bits`` with every ``--observers`` (the
  paper's transfer protocol), and at ``--reconstruction-bits`` with every
  ``--reconstructions`` (``mse+qdrop``: QDrop from the MSE ranges), all
  10,000 test images;
- ``det`` and ``seg``: the same protocol for RetinaNet (bbox mAP) and FCN
  (mIoU) on the paste dataset: CIFAR-10 test images pasted onto smooth
  backgrounds, built once into ``<work>/paste`` (``--paste-train``,
  ``--paste-val`` images of 64 px; four classes, objects of 32-48 px, at
  most two per image);
- ``qat``, ``det-qat``, ``seg-qat``: quantization-aware fine-tuning at
  ``--qat-bits``, tested there.

Each job is one run of ``tools/benchmarks/transfer.py`` that writes
``<work>/<stage>/<backbone>_ft<seed>/transfer.json``; finished jobs are
skipped on rerun, a fine-tuning that finished before a stop is reused, and
jobs run fine-tuning seed by seed (every backbone at seed 0 first), so a
run stopped early leaves complete comparisons of fewer seeds. Calibrations
a finished fine-tuning was not tested with run as PTQ-only jobs into a
sub-folder of its job (``ptq-<calibrations>/``), in a second pass for
fine-tunings that finish in the first; so do further calibration draws
(``--calib-draws``: the observers again with other calibration images, in
``draw<k>/``), whose mean the tables give, with their spread. The summary
(``summary.md``, ``summary.json``) is rewritten from every finished job.

Example:
    python tools/benchmarks/downstream_cifar.py --data ../shared/data/cifar10 \\
        --backbones random \\
        simsiam_seed0=simsiam_resnet18-w16_1xb128-coslr-2500it_cifar10 \\
        ssql_seed0=ssql-simsiam_resnet18-w16_1xb128-coslr-2500it_cifar10
"""
import argparse
import json
import math
import os
import os.path as osp
import re
import shutil
import sys
from dataclasses import dataclass
from typing import (Callable, Dict, Iterator, List, Optional, Sequence,
                    Tuple)

from ptq_compare import RUN_NAME, parse_checkpoints
from repro_cifar10 import run_jobs

from ssql_mm.checkpoint import report_errors
from ssql_mm.datasets import extract_cifar10
from ssql_mm.datasets.paste_dataset import PasteSpec, build_paste_dataset
from ssql_mm.evaluation.aggregate import mean_ci95
from ssql_mm.evaluation.transfer import parse_calibration
from ssql_mm.models.bit_setting import parse_bit_setting


@dataclass(frozen=True)
class Stage:
    """One fine-tuning protocol of one task.

    Args:
        config (str): The ``transfer.py`` config.
        metric (str): Its test metric (``transfer.py --metric``).
        label (str): The metric's name in the summary, in %.
        scale (float): Factor from the metric to %.
        qat (bool): Quantization-aware fine-tuning (else float, then PTQ).
        paste (bool): Trains on the paste dataset (else CIFAR-10 images).
    """
    config: str
    metric: str
    label: str
    scale: float = 1.0
    qat: bool = False
    paste: bool = False


_CLS = 'configs/benchmarks/classification/resnet18-cifar-w16_1xb128-finetune'
# 16 epochs: at 8 the classification of some fine-tuning seeds stalled at
# guessed classes (results/downstream_cifar10/det_8e/).
_DET = ('configs/benchmarks/mmdet/'
        'retinanet_ssql-r18-cifar-w16_fpn_1xb16-16e_paste4-cifar10-64x64.py')
_SEG = ('configs/benchmarks/mmseg/'
        'fcn_ssql-r18-cifar-w16-d4_1xb8-2000it_paste4-cifar10-64x64.py')
_TOP1 = ('accuracy/top1', 'top-1')
_MAP = ('coco/bbox_mAP', 'bbox mAP')
_MIOU = ('mIoU', 'mIoU')
STAGES = {
    'cls': Stage(f'{_CLS}-steplr-15e_cifar10-5k.py', *_TOP1),
    'qat': Stage(f'{_CLS}-qat-4w4a-steplr-15e_cifar10-5k.py', *_TOP1,
                 qat=True),
    'det': Stage(_DET, *_MAP, scale=100.0, paste=True),
    'det-qat': Stage(_DET, *_MAP, scale=100.0, qat=True, paste=True),
    'seg': Stage(_SEG, *_MIOU, paste=True),
    'seg-qat': Stage(_SEG, *_MIOU, qat=True, paste=True),
}
RANDOM = 'random'
BASELINE, SSQL = 'simsiam', 'ssql'
PASTE = 'paste'
# The paste set of the det/seg configs: CIFAR-10 test images (unseen in
# pretraining) of four classes, 32-48 px in a 64 px canvas (RetinaNet's
# stride-8 anchors), at most two per image. With all ten classes and 40-64
# px in 96 px, five epochs left RetinaNet's classification at chance
# (bbox mAP 7.5 random init, 8.6 SSQL: results/downstream_cifar10/).
PASTE_CLASSES = ('airplane', 'automobile', 'frog', 'horse')
PASTE_SPEC = PasteSpec(image_size=64, min_objects=1, max_objects=2,
                       min_size=32, max_size=48)
_LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
DRAW_SEED_STEP = 100
"""Calibration draw k of fine-tuning seed s calibrates with runner seed
s + 100 k (draw 0 is the fine-tuning's own)."""


def parse_backbones(items: Sequence[str]) -> Dict[str, Optional[str]]:
    """``random`` or ``NAME=PATH`` (or ``NAME=ZOO_MODEL``) items.

    Args:
        items (Sequence[str]): The command-line values.

    Returns:
        dict: Checkpoint per backbone name (None for random init), in order.
    """
    out: Dict[str, Optional[str]] = {}
    for item in items:
        if item == RANDOM:
            out[RANDOM] = None
        else:
            out.update(parse_checkpoints([item], '--backbones'))
    return out


def method_of(backbone: str) -> str:
    """``'simsiam'`` of ``'simsiam_seed1'``; ``'random'`` stays."""
    match = RUN_NAME.match(backbone)
    return match['method'] if match else backbone


def job_dir(work: str, stage: str, backbone: str, ft_seed: int) -> str:
    """Folder of one fine-tuning job."""
    return osp.join(work, stage, f'{backbone}_ft{ft_seed}')


def paste_dir(work: str) -> str:
    """Folder of the paste dataset of a study."""
    return osp.join(work, PASTE)


def _run_options(args: argparse.Namespace, stage: str,
                 seed: int) -> List[str]:
    """``--cfg-options`` of a stage's jobs: the runner seed (the fine-tuning
    seed, which also draws the calibration images) and the data."""
    options = [f'randomness.seed={seed}']
    if not STAGES[stage].paste:
        return options + [f'{loader}.dataset.data_root={args.data}'
                          for loader in (*_LOADERS, 'calib_dataloader')]
    root = paste_dir(args.work)
    options += [f'{loader}.dataset.data_root={root}' for loader in _LOADERS]
    if STAGES[stage].metric == _MAP[0]:
        val = osp.join(root, 'annotations', 'val.json')
        options += [f'val_evaluator.ann_file={val}',
                    f'test_evaluator.ann_file={val}']
    return options


def prepare_paste(args: argparse.Namespace) -> str:
    """Build the paste dataset once (from the CIFAR-10 test images) and
    refuse one built with other settings.

    Args:
        args (argparse.Namespace): ``data``, ``work``, ``paste_train``,
            ``paste_val``.

    Returns:
        str: The dataset folder.
    """
    root = paste_dir(args.work)
    record = osp.join(root, 'paste.json')
    wanted = dict(num_train=args.paste_train, num_val=args.paste_val,
                  seed=0, classes=list(PASTE_CLASSES), **vars(PASTE_SPEC))
    if osp.isfile(record):
        with open(record) as f:
            built = json.load(f)
        if built != wanted:
            raise ValueError(
                f'{root} was built with {built}, not {wanted}; give another '
                '--work or the --paste-train/--paste-val it was built with.')
        return root
    if osp.exists(root):
        raise ValueError(f'{root} exists without paste.json (an interrupted '
                         'build?); delete it and rerun.')
    source = args.data
    if not osp.isdir(osp.join(source, 'test')):
        source = extract_cifar10(args.data, osp.join(args.work, 'cache'))
    tmp = f'{root}.partial-{os.getpid()}'
    try:
        build_paste_dataset(osp.join(source, 'test'), tmp, args.paste_train,
                            args.paste_val, PASTE_CLASSES, PASTE_SPEC, seed=0)
        with open(osp.join(tmp, 'paste.json'), 'w') as f:
            json.dump(wanted, f)
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def job_command(args: argparse.Namespace, stage: str, backbone: str,
                checkpoint: Optional[str], ft_seed: int) -> List[str]:
    """The ``transfer.py`` command of one job (reusing a finished
    fine-tuning when one is there)."""
    out = job_dir(args.work, stage, backbone, ft_seed)
    options = _run_options(args, stage, ft_seed)
    if args.epochs is not None and not STAGES[stage].paste:
        options += [f'train_cfg.max_epochs={args.epochs}',
                    f'train_cfg.val_interval={args.epochs}',
                    f'default_hooks.checkpoint.interval={args.epochs}',
                    'param_scheduler.milestones='
                    f'[{round(args.epochs * 0.6)},{round(args.epochs * 0.8)}]']
    cmd = [sys.executable, 'tools/benchmarks/transfer.py',
           STAGES[stage].config, '--work-dir', out, '--metric',
           STAGES[stage].metric]
    if checkpoint is not None:
        cmd += ['--pretrained', checkpoint]
    last = osp.join(out, 'finetune', 'last_checkpoint')
    if osp.isfile(last):
        with open(last) as f:
            cmd += ['--finetuned', f.read().strip()]
    if STAGES[stage].qat:
        setting = parse_bit_setting(args.qat_bits)
        cmd += ['--qat']
        options += [f'model.backbone.w_bits={setting.w_bits}',
                    f'model.backbone.a_bits={setting.a_bits}']
    else:
        cmd += ['--bits', *args.bits, '--observers', *args.observers]
    return cmd + ['--cfg-options', *options]


def _columns(path: str) -> List[str]:
    with open(path) as f:
        return list(json.load(f)['top1'])


def ptq_command(args: argparse.Namespace, stage: str, out: str, seed: int,
                columns: Sequence[str], bits: Sequence[str],
                folder: str) -> List[str]:
    """PTQ of a finished fine-tuning (``transfer.py --finetuned``) with
    ``columns`` at the quantized ones of ``bits``, runner seed ``seed``,
    into ``<job>/<folder>``."""
    with open(osp.join(out, 'finetune', 'last_checkpoint')) as f:
        finetuned = f.read().strip()
    bits = [b for b in bits if not parse_bit_setting(b).is_float]
    return [sys.executable, 'tools/benchmarks/transfer.py',
            STAGES[stage].config, '--work-dir', osp.join(out, folder),
            '--metric', STAGES[stage].metric, '--finetuned', finetuned,
            '--bits', *bits, '--observers', *columns, '--cfg-options',
            *_run_options(args, stage, seed)]


def extra_ptq_command(args: argparse.Namespace, stage: str, out: str,
                      ft_seed: int, observers: Sequence[str],
                      bits: Sequence[str]) -> List[str]:
    """PTQ of a finished fine-tuning with calibrations it was not tested
    with, on its own calibration draw, into ``<job>/ptq-<calibrations>/``."""
    folder = 'ptq-' + re.sub(r'[^\w.-]', '_', '-'.join(observers))
    return ptq_command(args, stage, out, ft_seed, observers, bits, folder)


def draw_command(args: argparse.Namespace, stage: str, out: str,
                 ft_seed: int, draw: int) -> List[str]:
    """PTQ of a finished fine-tuning at ``--bits`` with ``--observers`` on
    calibration draw ``draw`` (runner seed ``ft_seed + DRAW_SEED_STEP *
    draw``), into ``<job>/draw<draw>/``."""
    return ptq_command(args, stage, out, ft_seed + DRAW_SEED_STEP * draw,
                       args.observers, args.bits, f'draw{draw}')


def job_results(out: str) -> List[str]:
    """The ``transfer.json`` files of a job's own calibration draw: its
    own, then those of later PTQ runs of its fine-tuning (``ptq-*/``)."""
    paths = [osp.join(out, 'transfer.json')]
    if osp.isdir(out):
        paths += sorted(osp.join(out, d, 'transfer.json')
                        for d in os.listdir(out) if d.startswith('ptq-'))
    return [p for p in paths if osp.isfile(p)]


def draw_results(out: str) -> List[str]:
    """The ``transfer.json`` of each further calibration draw of a job
    (``<job>/draw<k>/``), in the order of ``k``."""
    if not osp.isdir(out):
        return []
    draws = sorted(int(d[4:]) for d in os.listdir(out)
                   if re.fullmatch(r'draw\d+', d))
    paths = [osp.join(out, f'draw{k}', 'transfer.json') for k in draws]
    return [p for p in paths if osp.isfile(p)]


def jobs_to_run(args: argparse.Namespace,
                fine_tune: bool = True) -> List[Tuple[str, List[str], str]]:
    """Every unfinished job as ``(label, command, log)``, seed by seed, in
    the order of ``--stages`` and ``--backbones``. A finished ``cls``,
    ``det`` or ``seg`` job missing some of ``--observers`` gets a PTQ-only
    job for them at ``--bits``, and one for the missing
    ``--reconstructions`` at ``--reconstruction-bits``, and one per further
    calibration draw (``--calib-draws``) with ``--observers``. With
    ``fine_tune`` False, only those PTQ-only jobs."""
    jobs = []
    for ft_seed in args.ft_seeds:
        for stage in args.stages:
            for backbone, checkpoint in args.backbones.items():
                out = job_dir(args.work, stage, backbone, ft_seed)
                label = f'{stage} {backbone} ft{ft_seed}'
                done = job_results(out)
                if not done:
                    if not fine_tune:
                        continue
                    jobs.append((label, job_command(
                        args, stage, backbone, checkpoint, ft_seed),
                        f'{out}.log'))
                    continue
                if STAGES[stage].qat:
                    continue
                have = {c for p in done for c in _columns(p)}
                for columns, bits in ((args.observers, args.bits),
                                      (args.reconstructions,
                                       args.reconstruction_bits)):
                    missing = [c for c in columns if c not in have]
                    if missing:
                        cmd = extra_ptq_command(args, stage, out, ft_seed,
                                                missing, bits)
                        jobs.append((f'{label} ptq {" ".join(missing)}', cmd,
                                     cmd[cmd.index('--work-dir') + 1] +
                                     '.log'))
                for draw in range(1, args.calib_draws):
                    folder = osp.join(out, f'draw{draw}')
                    if not osp.isfile(osp.join(folder, 'transfer.json')):
                        jobs.append((f'{label} draw{draw}', draw_command(
                            args, stage, out, ft_seed, draw), f'{folder}.log'))
    return jobs


Scores = Dict[str, Dict[str, Dict[str, Dict[str, float]]]]


def _job_draws(work: str) -> Iterator[Tuple[str, str, List[dict]]]:
    """``(stage, job, draws)`` of every finished job: per calibration draw,
    ``top1[column][setting]`` in %. Draw 0 holds the job's own results and
    its ``ptq-*`` runs, and there a column tested without FP takes the
    job's FP; FP is not calibrated, so further draws have none."""
    for stage in STAGES:
        folder = osp.join(work, stage)
        if not osp.isdir(folder):
            continue
        for job in sorted(os.listdir(folder)):
            out = osp.join(folder, job)
            fp, draws = None, []
            for paths in [job_results(out)] + [[p] for p in draw_results(out)]:
                first = not draws
                top1: Dict[str, Dict[str, float]] = {}
                for path in paths:
                    with open(path) as f:
                        raw = json.load(f)['top1']
                    for column, values in raw.items():
                        values = {s: v * STAGES[stage].scale
                                  for s, v in values.items()}
                        fp = values.get('FP', fp)
                        if first and fp is not None and 'FP' not in values:
                            values = dict(FP=fp, **values)
                        top1[column] = values
                if top1:
                    draws.append(top1)
            if draws:
                yield stage, job, draws


def _per_setting(draws: List[dict]) -> Iterator[Tuple[str, str, List[float]]]:
    """``(column, setting, values over draws)`` of the columns and settings
    of draw 0."""
    for column, values in draws[0].items():
        for setting in values:
            yield column, setting, [d[column][setting] for d in draws
                                    if setting in d.get(column, {})]


def _reduce_draws(work: str, reduce: Callable[[List[float]], float],
                  min_draws: int = 1) -> Scores:
    """``out[stage][column][job][setting]``: ``reduce`` of the values over
    a job's calibration draws, for settings tested on ``min_draws`` or
    more."""
    out: Scores = {}
    for stage, job, draws in _job_draws(work):
        for column, setting, values in _per_setting(draws):
            if len(values) >= min_draws:
                out.setdefault(stage, {}).setdefault(column, {}).setdefault(
                    job, {})[setting] = reduce(values)
    return out


def collect(work: str) -> Scores:
    """``scores[stage][column][job][setting]`` (in %) from every finished
    job (``column``: a calibration, or ``qat``), the mean over its
    calibration draws."""
    return _reduce_draws(work, lambda v: sum(v) / len(v))


def collect_spreads(work: str) -> Scores:
    """``spreads[stage][column][job][setting]``: max − min (points) over the
    calibration draws of the settings tested on two or more."""
    return _reduce_draws(work, lambda v: max(v) - min(v), min_draws=2)


def _split_job(job: str) -> Tuple[str, int]:
    backbone, _, seed = job.rpartition('_ft')
    return backbone, int(seed)


def _cell(values: Sequence[float], signed: bool = False) -> str:
    if not values:
        return '–'
    mean, half = mean_ci95(values)
    text = f'{mean:+.2f}' if signed else f'{mean:.2f}'
    return text if math.isnan(half) else f'{text} ± {half:.2f}'


def summarize(scores: Scores,
              spreads: Optional[Scores] = None) -> Tuple[str, dict]:
    """Markdown tables and their numbers.

    Per stage and column: the stage's metric (top-1, bbox mAP or mIoU, in
    %) per backbone method (mean ± 95 % interval over pretraining and
    fine-tuning seeds), the drop from FP, SSQL − SimSiam paired by
    pretraining and fine-tuning seed, and, where jobs have several
    calibration draws, their spread.

    Args:
        scores (dict): :func:`collect`'s output.
        spreads (dict, optional): :func:`collect_spreads`'s output.
            Defaults to None (no spread tables).

    Returns:
        tuple[str, dict]: The Markdown and ``summary[stage][column]`` with
        ``top1`` (the metric, whichever it is), ``drop``,
        ``ssql_minus_simsiam`` and ``draw_spread`` per method/setting as
        ``(mean, half_width, n)``.
    """
    spreads = spreads or {}
    blocks: List[str] = []
    summary: Dict[str, dict] = {}
    for stage, columns in scores.items():
        for column, jobs in columns.items():
            settings: List[str] = []
            for values in jobs.values():
                settings += [s for s in values if s not in settings]
            groups: Dict[str, List[str]] = {}
            for job in jobs:
                groups.setdefault(method_of(_split_job(job)[0]), []).append(job)
            top1 = {m: {s: [jobs[j][s] for j in runs if s in jobs[j]]
                        for s in settings} for m, runs in groups.items()}
            drop = {m: {s: [jobs[j]['FP'] - jobs[j][s] for j in runs
                            if s in jobs[j] and 'FP' in jobs[j]]
                        for s in settings if s != 'FP'}
                    for m, runs in groups.items()}
            diff = {}
            for job in groups.get(SSQL, []):
                backbone, ft_seed = _split_job(job)
                base = f'{BASELINE}{backbone[len(SSQL):]}_ft{ft_seed}'
                for s in settings:
                    if s in jobs[job] and s in jobs.get(base, {}):
                        diff.setdefault(s, []).append(
                            jobs[job][s] - jobs[base][s])
            title = (f'{stage} (quantization-aware fine-tuning)'
                     if STAGES[stage].qat else f'{stage}, {column}')
            tables = [(f'{STAGES[stage].label} (%)', top1)]
            if not STAGES[stage].qat:
                tables.append(('drop from FP (points)', drop))
            for name, table in tables:
                rows = [s for s in settings
                        if any(table[m].get(s) for m in table)]
                blocks.append(_table(f'{title}: {name}, mean ± 95 % '
                                     'interval over seeds', table, rows))
            if diff:
                blocks.append(_table(
                    f'{title}: SSQL − SimSiam, same pretraining and '
                    'fine-tuning seed', {'SSQL − SimSiam': diff},
                    [s for s in settings if s in diff], signed=True))
            spread_jobs = spreads.get(stage, {}).get(column, {})
            spread = {m: {s: [spread_jobs[j][s] for j in runs
                              if s in spread_jobs.get(j, {})]
                          for s in settings if s != 'FP'}
                      for m, runs in groups.items()}
            if spread_jobs:
                blocks.append(_table(
                    f'{title}: calibration-draw spread (max − min over a '
                    "job's draws, points), mean ± 95 % interval over jobs",
                    spread, [s for s in settings
                             if any(spread[m].get(s) for m in spread)]))
            pack = lambda t: {m: {s: (*mean_ci95(v), len(v))  # noqa: E731
                                  for s, v in t[m].items() if v} for m in t}
            summary.setdefault(stage, {})[column] = dict(
                top1=pack(top1), drop=pack(drop),
                ssql_minus_simsiam={s: (*mean_ci95(v), len(v))
                                    for s, v in diff.items()},
                draw_spread=pack(spread),
                jobs=sorted(jobs))
    return '\n\n'.join(blocks) + '\n', summary


def _table(title: str, table: Dict[str, Dict[str, List[float]]],
           settings: Sequence[str], signed: bool = False) -> str:
    counts = {m: max((len(v) for v in table[m].values()), default=0)
              for m in table}
    heads = [f'{m} (n={counts[m]})' for m in table]
    lines = [f'**{title}**', '', '| bits | ' + ' | '.join(heads) + ' |',
             '|---|' + '---:|' * len(table)]
    for s in settings:
        lines.append(f'| {s} | ' + ' | '.join(
            _cell(table[m].get(s, []), signed) for m in table) + ' |')
    return '\n'.join(lines)


def parse_args(argv: Sequence[str] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', default='../shared/data/cifar10',
                        help='folder with train/test class folders or '
                        'train.tar.gz / test.tar.gz')
    parser.add_argument('--work', default='work_dirs/downstream_cifar')
    parser.add_argument('--backbones', nargs='+', metavar='NAME=PATH',
                        help=f'{RANDOM} and/or checkpoint files or model-zoo '
                        'names, named <method>_seed<N> (ssql_seed0=...)')
    parser.add_argument('--stages', nargs='+', choices=STAGES,
                        default=list(STAGES))
    parser.add_argument('--ft-seeds', nargs='+', type=int, default=[0, 1])
    parser.add_argument('--bits', nargs='+',
                        default=['fp', '8/8', '4/4', '3/3', '2/4'])
    parser.add_argument('--observers', nargs='+',
                        default=['minmax', 'mse', 'mse:weights=false'])
    parser.add_argument('--reconstructions', nargs='*',
                        default=['mse+qdrop'], metavar='OBSERVER+METHOD',
                        help='reconstruction PTQ after fine-tuning, at '
                        '--reconstruction-bits (default: %(default)s)')
    parser.add_argument('--reconstruction-bits', nargs='+',
                        default=['4/4', '2/4'])
    parser.add_argument('--calib-draws', type=int, default=1,
                        help='calibration draws per fine-tuning for '
                        '--observers: draw k calibrates with seed '
                        f'ft_seed + {DRAW_SEED_STEP} k (default: 1)')
    parser.add_argument('--qat-bits', default='4/4')
    parser.add_argument('--epochs', type=int,
                        help="classification fine-tuning epochs (default: "
                        "the configs' 15; lr steps at 60 %% and 80 %%)")
    parser.add_argument('--paste-train', type=int, default=3000,
                        help='paste dataset training images (det, seg)')
    parser.add_argument('--paste-val', type=int, default=500,
                        help='paste dataset test images (det, seg)')
    parser.add_argument('--jobs', type=int, default=1,
                        help='jobs side by side')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads per job')
    parser.add_argument('--summary-only', action='store_true',
                        help='tabulate the finished jobs, run nothing')
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.threads < 1 or args.calib_draws < 1:
        parser.error('--jobs, --threads and --calib-draws must be >= 1')
    if args.epochs is not None and args.epochs < 2:
        parser.error('--epochs must be >= 2')
    if args.paste_train < 1 or args.paste_val < 1:
        parser.error('--paste-train and --paste-val must be >= 1')
    if not args.summary_only and not args.backbones:
        parser.error('--backbones is required unless --summary-only')
    try:
        args.backbones = parse_backbones(args.backbones or [])
        setting = parse_bit_setting(args.qat_bits)
        if setting.is_float or setting.is_mixed:
            raise ValueError(f'--qat-bits {args.qat_bits!r}: give uniform '
                             'W/A bits such as 4/4.')
        for bits in (*args.bits, *args.reconstruction_bits):
            parse_bit_setting(bits)
        for observer in args.observers:
            if parse_calibration(observer)[1] is not None:
                raise ValueError(f'--observers {observer!r}: give '
                                 'reconstructions as --reconstructions.')
        for column in args.reconstructions:
            if parse_calibration(column)[1] is None:
                raise ValueError(f'--reconstructions {column!r}: write '
                                 'OBSERVER+METHOD, for example mse+qdrop.')
    except ValueError as err:
        parser.error(str(err))
    return args


def main() -> None:
    args = parse_args()
    if not args.summary_only:
        # The second pass: PTQ-only jobs of fine-tunings of the first.
        for fine_tune in (True, False):
            jobs = jobs_to_run(args, fine_tune)
            if jobs and any(STAGES[stage].paste for stage in args.stages):
                with report_errors('downstream_cifar', (ValueError, )):
                    prepare_paste(args)
            run_jobs(jobs, args.jobs, args.threads)
    with report_errors('downstream_cifar'):
        text, summary = summarize(collect(args.work),
                                  collect_spreads(args.work))
        os.makedirs(args.work, exist_ok=True)
        with open(osp.join(args.work, 'summary.md'), 'w') as f:
            f.write(text)
        with open(osp.join(args.work, 'summary.json'), 'w') as f:
            json.dump(summary, f, indent=2)
        print(text)


if __name__ == '__main__':
    main()
