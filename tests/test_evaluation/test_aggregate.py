"""Seed statistics of sweeps: mean and Student-t 95% interval."""
import math

import pytest

from ssql_mm.evaluation.aggregate import (format_summary, mean_ci95,
                                          seed_summary)


def test_mean_ci95_against_the_t_table():
    mean, half = mean_ci95([1.0, 3.0])  # sd = sqrt(2), n = 2, t = 12.706
    assert mean == 2.0 and half == pytest.approx(12.706)
    mean, half = mean_ci95([2.0, 4.0, 6.0])  # sd = 2, n = 3, t = 4.303
    assert mean == 4.0 and half == pytest.approx(4.303 * 2 / math.sqrt(3))
    assert math.isnan(mean_ci95([5.0])[1])
    with pytest.raises(ValueError):
        mean_ci95([])


def test_seed_summary_groups_runs_and_formats():
    scores = {'a0': {'FP': 50.0, '4w4a': 40.0}, 'a1': {'FP': 52.0, '4w4a': 44.0},
              'b0': {'FP': 30.0, '4w4a': 20.0}}
    summary = seed_summary(scores, {'a': ['a0', 'a1'], 'b': ['b0']},
                           ['FP', '4w4a'])
    assert summary['a']['4w4a'][0] == 42.0
    assert summary['a']['FP'][1] == pytest.approx(12.706)  # sd = sqrt(2), n = 2
    text = format_summary(summary, ['FP', '4w4a'], 'kNN')
    assert '| 4w4a | 42.00 ± 25.41 | 20.00 |' in text
