"""The PTQ comparison recipe: which sweeps it runs, what it skips, and the
numbers its summary derives from finished sweeps."""
import json
import os
import os.path as osp

import pytest


@pytest.fixture
def recipe(load_benchmark):
    return load_benchmark('ptq_compare')


def write_sweep(work, run, job, knn, linear=None):
    folder = osp.join(work, run, job)
    os.makedirs(folder, exist_ok=True)
    with open(osp.join(folder, 'bit_sweep.json'), 'w') as f:
        json.dump(dict(knn={'iter_2500': knn},
                       linear={'iter_2500': linear or knn}), f)


def test_jobs_cover_methods_and_draws_and_skip_finished_sweeps(recipe,
                                                               tmp_path):
    work = str(tmp_path)
    args = recipe.parse_args([
        '--work', work, '--checkpoints', 'simsiam_seed0=a.pth',
        '--methods', 'minmax', 'brecq', '--draws', '3', '--ptq-draws', '2',
        '--ptq-options', 'iters=50', '--placement', 'integer',
        '--bits', '4/4', '3/3', '2/4', '--ptq-bits', '4/4', '2/4'])
    write_sweep(work, 'simsiam_seed0', 'minmax_draw1', {'4w4a': 1.0})
    jobs = recipe.sweep_jobs(args, 'DATA')
    labels = [label for label, _, _, _ in jobs]
    # Draw by draw; the finished minmax draw 1 is skipped.
    assert labels == [
        'simsiam_seed0 fp draw 0', 'simsiam_seed0 minmax draw 0',
        'simsiam_seed0 brecq draw 0', 'simsiam_seed0 brecq draw 1',
        'simsiam_seed0 minmax draw 2']
    brecq = jobs[3][1]
    assert brecq[brecq.index('--ptq') + 1] == 'brecq:iters=50'
    assert brecq[brecq.index('--observer') + 1] == 'mse'
    assert brecq[brecq.index('--seed') + 1] == '1'
    assert brecq[brecq.index('--placement') + 1] == 'integer'
    assert brecq[brecq.index('--preset') + 1] == 'zoo'
    assert brecq[brecq.index('--bits') + 1:brecq.index('--seed')] == [
        '4/4', '2/4']
    minmax = jobs[1][1]
    assert minmax[minmax.index('--bits') + 1:minmax.index('--seed')] == [
        '4/4', '3/3', '2/4']
    fp = jobs[0][1]
    assert fp[fp.index('--bits') + 1:fp.index('--bits') + 2] == ['fp']


def test_summary_differences_best_method_and_recovered_share(recipe,
                                                             tmp_path):
    work = str(tmp_path)
    args = recipe.parse_args([
        '--work', work, '--checkpoints', 'simsiam_seed0=a.pth',
        'ssql_seed0=b.pth', '--methods', 'minmax', 'mse', '--bits', '2/4',
        '--draws', '2'])
    write_sweep(work, 'simsiam_seed0', 'fp_draw0', {'FP': 40.0})
    write_sweep(work, 'simsiam_seed0', 'minmax_draw0', {'2w4a': 20.0})
    write_sweep(work, 'simsiam_seed0', 'minmax_draw1', {'2w4a': 22.0})
    write_sweep(work, 'simsiam_seed0', 'mse_draw0', {'2w4a': 31.0})
    write_sweep(work, 'simsiam_seed0', 'mse_draw1', {'2w4a': 33.0})
    write_sweep(work, 'ssql_seed0', 'fp_draw0', {'FP': 39.0})
    write_sweep(work, 'ssql_seed0', 'minmax_draw0', {'2w4a': 30.0})
    write_sweep(work, 'ssql_seed0', 'minmax_draw1', {'2w4a': 30.0})
    write_sweep(work, 'ssql_seed0', 'mse_draw0', {'2w4a': 29.0})
    text = recipe.summarize(args, recipe.collect(args))
    assert '| 2w4a | minmax | 21.00 (20.00–22.00) | 30.00 (30.00–30.00) |' \
        in text
    # Same method: SSQL − SimSiam of the draw means.
    assert '| 2w4a | minmax | +9.00 |' in text
    assert '| 2w4a | mse | -3.00 |' in text
    # Best of each: SSQL min/max 30 against SimSiam MSE 32.
    assert '| 2w4a | best | -2.00 (minmax vs mse) |' in text
    # SimSiam: FP 40, min/max 21, best 32 -> 11 of 19 points recovered.
    summary = json.loads((tmp_path / 'summary.json').read_text())
    recovered = summary['summary']['knn']['recovered']
    assert recovered['simsiam_seed0']['2w4a'] == pytest.approx(11 / 19)
    assert recovered['ssql_seed0']['2w4a'] == pytest.approx(0.0)


def test_checkpoint_names_must_name_method_and_seed(recipe, tmp_path,
                                                    capsys):
    with pytest.raises(SystemExit) as exit_info:
        recipe.parse_args(['--work', str(tmp_path), '--checkpoints',
                           'baseline=a.pth'])
    assert exit_info.value.code == 2
    assert "write NAME=PATH with NAME like simsiam_seed0" in \
        capsys.readouterr().err


def test_mse_act_calibrates_activations_only(recipe, tmp_path):
    args = recipe.parse_args(['--work', str(tmp_path), '--checkpoints',
                              'ssql_seed0=b.pth', '--methods', 'mse-act',
                              '--draws', '1'])
    jobs = recipe.sweep_jobs(args, 'DATA')
    assert [label for label, _, _, _ in jobs] == [
        'ssql_seed0 fp draw 0', 'ssql_seed0 mse-act draw 0']
    cmd = jobs[1][1]
    assert cmd[cmd.index('--observer') + 1] == 'mse:weights=false'
    assert '--ptq' not in cmd
    assert cmd[cmd.index('--out') + 1] == osp.join(str(tmp_path), 'ssql_seed0',
                                                   'mse-act_draw0')
