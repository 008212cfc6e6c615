"""The mixed-precision Pareto recipe: which sweeps it runs, what it skips,
and the comparisons its summary derives from finished searches and sweeps."""
import json
import os
import os.path as osp

import pytest


@pytest.fixture
def recipe(load_benchmark):
    return load_benchmark('mixed_pareto')


def write_json(path, data):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(data, f)


def test_sweeps_per_group_skip_finished_ones(recipe, tmp_path, monkeypatch):
    args = recipe.parse_args([
        '--work', str(tmp_path), '--checkpoints', 'a=a.pth', 'b=b.pth',
        '--methods', 'hessian', 'measured', '--budgets', 'bops=3/3',
        'size=4/4', '--uniform', '4/4', '3/3'])
    write_json(osp.join(recipe.sweep_out(args, 'b', 'hessian'),
                        'bit_sweep.json'), {})
    ran = []
    monkeypatch.setattr(recipe, 'run_streams',
                        lambda streams, threads: ran.extend(
                            job for s in streams for job in s))
    recipe.stage_sweep(args, 'DATA')
    labels = sorted(label for label, _, _ in ran)
    assert labels == ['sweep a (hessian)', 'sweep a (measured)',
                      'sweep a (uniform)', 'sweep b (measured)',
                      'sweep b (uniform)']
    cmd = next(c for label, c, _ in ran if label == 'sweep a (measured)')
    bits = cmd[cmd.index('--bits') + 1:cmd.index('--out')]
    assert bits == ['mixed:' + osp.join(str(tmp_path), 'a', 'bits', name)
                    for name in ('measured_bops-3w3a.yml',
                                 'measured_size-4w4a.yml')]
    uniform = next(c for label, c, _ in ran if label == 'sweep a (uniform)')
    assert uniform[uniform.index('--bits') + 1:uniform.index('--out')] == [
        'fp', '4/4', '3/3']


def test_summary_puts_costs_beside_accuracy_and_compares_at_equal_budget(
        recipe, tmp_path):
    args = recipe.parse_args([
        '--work', str(tmp_path), '--checkpoints', 'ssql=s.pth',
        '--methods', 'measured', '--budgets', 'bops=3/3', '--uniform', '3/3',
        '4/4'])
    write_json(recipe.search_record(args, 'ssql', 'measured'), dict(
        references={'3/3': {'bops': 3e9, 'size': 3072},
                    '4/4': {'bops': 4e9, 'size': 4096}},
        settings={'mixed:measured_bops-3w3a': dict(
            budget='bops=3/3', cost={'bops': 2.9e9, 'size': 3500})},
        seconds=dict(sensitivity=12.0, allocation=[0.5], total=13.0)))
    write_json(osp.join(recipe.sweep_out(args, 'ssql', 'uniform'),
                        'bit_sweep.json'),
               dict(knn={'x': {'FP': 33.0, '3w3a': 20.0, '4w4a': 28.0}},
                    linear={'x': {'FP': 37.0, '3w3a': 22.0, '4w4a': 30.0}}))
    write_json(osp.join(recipe.sweep_out(args, 'ssql', 'measured'),
                        'bit_sweep.json'),
               dict(knn={'x': {'mixed:measured_bops-3w3a': 24.5}},
                    linear={'x': {'mixed:measured_bops-3w3a': 21.0}}))
    rows = recipe.collect(args, recipe.search_records(args))
    mixed = rows['ssql']['mixed:measured_bops-3w3a']
    assert (mixed['bops'], mixed['size'], mixed['kind']) == (
        2.9e9, 3500, 'measured')
    assert rows['ssql']['3w3a']['bops'] == 3e9
    assert rows['ssql']['FP']['bops'] is None
    text = recipe.summarize(args, rows, {('ssql', 'measured'): dict(
        sensitivity=12.0, allocation=[0.5])})
    assert '| ssql | bops=3/3 | +4.50 / -1.00 |' in text
    assert '| mixed:measured_bops-3w3a | measured | 2.90 | 3.4 | 24.50 |' \
        in text
    # Rows run from the cheapest to FP (no cost) last.
    table = [line for line in text.splitlines() if line.startswith('| ')
             and ('w' in line.split('|')[1] or 'FP' in line)]
    assert [line.split('|')[1].strip() for line in table[:4]] == [
        'mixed:measured_bops-3w3a', '3w3a', '4w4a', 'FP']


@pytest.mark.parametrize('argv, message', [
    (['--checkpoints', 'a'], 'write NAME=PATH'),
    (['--checkpoints', 'a=x', '--budgets', 'bops=3'], 'write KIND=W/A'),
    (['--checkpoints', 'a=x', '--uniform', 'fp'], 'give a W/A setting'),
    (['--checkpoints', 'a=x', '--jobs', '0'], 'must be >= 1'),
])
def test_bad_arguments_fail_before_any_work(recipe, capsys, argv, message):
    with pytest.raises(SystemExit):
        recipe.parse_args(argv)
    assert message in capsys.readouterr().err
