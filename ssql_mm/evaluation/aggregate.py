"""Seed statistics over several bit sweeps of the same method."""
import math
import statistics
from typing import Dict, List, Sequence, Tuple

__all__ = ['mean_ci95', 'seed_summary', 'format_summary']

# Two-sided 97.5% quantiles of Student's t for 1..10 degrees of freedom.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262,
         2.228)

Scores = Dict[str, Dict[str, float]]  # run name -> setting -> accuracy


def mean_ci95(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and half-width of its 95% Student-t confidence interval.

    Args:
        values (Sequence[float]): One value per seed.

    Returns:
        tuple[float, float]: Mean and half-width (NaN for a single value).
    """
    if not values:
        raise ValueError('mean_ci95 needs at least one value.')
    mean = statistics.fmean(values)
    n = len(values)
    if n == 1:
        return mean, math.nan
    if n - 1 > len(_T975):
        raise ValueError(f'mean_ci95 supports up to {len(_T975) + 1} values.')
    half = _T975[n - 2] * statistics.stdev(values) / math.sqrt(n)
    return mean, half


def seed_summary(scores: Scores, groups: Dict[str, List[str]],
                 settings: Sequence[str]) -> Dict[str, Dict[str, Tuple[float, float]]]:
    """Mean and 95% half-width per group (method) and setting.

    Args:
        scores (dict): ``scores[run][setting]`` accuracies.
        groups (dict): Method name to its runs (one per seed).
        settings (Sequence[str]): Settings to summarise.

    Returns:
        dict: ``summary[method][setting] = (mean, half_width)``.
    """
    return {
        method: {s: mean_ci95([scores[r][s] for r in runs]) for s in settings}
        for method, runs in groups.items()
    }


def format_summary(summary: Dict[str, Dict[str, Tuple[float, float]]],
                   settings: Sequence[str], title: str) -> str:
    """A Markdown table: rows = settings, columns = methods, ``mean ± ci``."""
    methods = list(summary)
    lines = [f'**{title}**', '', '| bits | ' + ' | '.join(methods) + ' |',
             '|---|' + '---:|' * len(methods)]
    for s in settings:
        cells = []
        for m in methods:
            mean, half = summary[m][s]
            cells.append(f'{mean:.2f}' if math.isnan(half) else
                         f'{mean:.2f} ± {half:.2f}')
        lines.append(f'| {s} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)
