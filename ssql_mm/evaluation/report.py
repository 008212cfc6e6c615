"""Sweep reports: a text table, CSV, JSON and an accuracy-vs-bits plot."""
import csv
import json
import os
import os.path as osp
from typing import Dict, List

from .sweep import SweepResult

__all__ = ['METRIC_TITLES', 'format_table', 'write_csv', 'write_json',
           'plot_sweep', 'write_report']

METRIC_TITLES = {'knn': 'kNN top-1 (%)', 'linear': 'linear probe top-1 (%)',
                 'top1': 'fine-tuned top-1 (%)'}
_TOP1 = 'accuracy/top1'


def _metrics(result: SweepResult) -> Dict[str, Dict[str, Dict[str, float]]]:
    return {m: getattr(result, m) for m in METRIC_TITLES if getattr(result, m)}


def format_table(result: SweepResult) -> str:
    """A Markdown table per metric: rows = settings, columns = checkpoints.

    Args:
        result (SweepResult): Sweep output.

    Returns:
        str: The tables, separated by blank lines.
    """
    blocks = []
    for metric, scores in _metrics(result).items():
        title = METRIC_TITLES[metric]
        if metric == 'top1' and result.meta.get('metric', _TOP1) != _TOP1:
            title = f"fine-tuned {result.meta['metric']}"
        lines = [f'**{title}**', '',
                 '| bits | ' + ' | '.join(result.checkpoints) + ' |',
                 '|---|' + '---:|' * len(result.checkpoints)]
        for setting in result.settings:
            cells = [f'{scores[c][setting]:.2f}' for c in result.checkpoints]
            lines.append(f'| {setting} | ' + ' | '.join(cells) + ' |')
        blocks.append('\n'.join(lines))
    return '\n\n'.join(blocks)


def write_csv(result: SweepResult, path: str) -> None:
    """One row per setting, one column per (metric, checkpoint).

    Args:
        result (SweepResult): Sweep output.
        path (str): The CSV file.
    """
    metrics = _metrics(result)
    header = ['bits'] + [f'{m}/{c}' for m in metrics for c in result.checkpoints]
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for setting in result.settings:
            writer.writerow([setting] + [
                f'{metrics[m][c][setting]:.4f}' for m in metrics
                for c in result.checkpoints
            ])


def write_json(result: SweepResult, path: str) -> None:
    """The whole result (accuracies and metadata) as JSON.

    Args:
        result (SweepResult): Sweep output.
        path (str): The JSON file.
    """
    with open(path, 'w') as f:
        json.dump(result.to_dict(), f, indent=2)


def plot_sweep(result: SweepResult, path: str) -> None:
    """Accuracy against bit setting, one line per checkpoint, one panel per
    metric, saved as PNG (matplotlib's Agg backend, no display needed).

    Args:
        result (SweepResult): Sweep output.
        path (str): The PNG file.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    metrics = _metrics(result)
    fig = Figure(figsize=(5 * len(metrics), 3.8), tight_layout=True)
    FigureCanvasAgg(fig)
    x = list(range(len(result.settings)))
    for i, (metric, scores) in enumerate(metrics.items()):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        for ckpt in result.checkpoints:
            ax.plot(x, [scores[ckpt][s] for s in result.settings], marker='o',
                    label=ckpt)
        ax.set_xticks(x)
        ax.set_xticklabels(result.settings)
        ax.set_xlabel('bit setting (weights w, activations a)')
        ax.set_ylabel(METRIC_TITLES[metric])
        ax.grid(alpha=0.3)
        ax.legend(fontsize='small')
    fig.savefig(path, format='png', dpi=120)


def write_report(result: SweepResult, out_dir: str,
                 stem: str = 'bit_sweep') -> List[str]:
    """Write ``<stem>.csv``, ``<stem>.json``, ``<stem>.png`` and ``<stem>.md``.

    Args:
        result (SweepResult): Sweep output.
        out_dir (str): Output folder (created if missing).
        stem (str): File name stem. Defaults to 'bit_sweep'.

    Returns:
        list[str]: The files written.
    """
    os.makedirs(out_dir, exist_ok=True)
    paths = [osp.join(out_dir, f'{stem}.{ext}') for ext in
             ('csv', 'json', 'png', 'md')]
    write_csv(result, paths[0])
    write_json(result, paths[1])
    plot_sweep(result, paths[2])
    with open(paths[3], 'w') as f:
        f.write(format_table(result) + '\n')
    return paths
