"""Scheduling of the CIFAR-10 reproduction recipe's pretraining runs."""
import importlib.util
import os.path as osp

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_recipe():
    path = osp.join(ROOT, 'tools', 'benchmarks', 'repro_cifar10.py')
    spec = importlib.util.spec_from_file_location('repro_cifar10', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def runs(*pairs):
    return [(f'{m}_seed{s}', ['train', m, str(s)], f'{m}_seed{s}.log', m)
            for m, s in pairs]


def names(streams):
    return [[name for name, _, _ in stream] for stream in streams]


def test_one_seed_of_a_pair_runs_side_by_side():
    recipe = load_recipe()
    streams = recipe.balance_streams(runs(('byol', 0), ('ssql-byol', 0)), 2)
    assert names(streams) == [['ssql-byol_seed0'], ['byol_seed0']]


def test_two_seeds_pair_each_ssql_run_with_a_baseline():
    recipe = load_recipe()
    streams = recipe.balance_streams(
        runs(('simsiam', 0), ('ssql', 0), ('simsiam', 1), ('ssql', 1)), 2)
    assert names(streams) == [['ssql_seed0', 'simsiam_seed0'],
                              ['ssql_seed1', 'simsiam_seed1']]
    assert streams[0][0][1] == ['train', 'ssql', '0']  # commands kept


def test_one_job_runs_everything_in_one_stream_longest_first():
    recipe = load_recipe()
    streams = recipe.balance_streams(runs(('mocov2', 0), ('ssql-mocov2', 0)),
                                     1)
    assert names(streams) == [['ssql-mocov2_seed0', 'mocov2_seed0']]


def test_every_method_has_a_cost():
    recipe = load_recipe()
    assert set(recipe.RELATIVE_COST) == set(recipe.CONFIGS)


def test_ssql_runs_name_their_placement_and_baselines_none(tmp_path):
    """The SSQL configs train with ``integer``: an ``inputs`` run must say
    so on the command line, and a baseline never gets a quant_cfg."""
    import argparse
    recipe = load_recipe()
    args = argparse.Namespace(work=str(tmp_path), data='DATA', iters=10,
                              width=None, head_dim=None, pred_hidden=None,
                              batch_size=None)
    for placement in ('inputs', 'integer'):
        cmd = recipe.train_command(args, 'ssql', 0, placement)
        assert f'model.quant_cfg.placement={placement}' in cmd
        assert cmd[cmd.index('--work-dir') + 1].endswith(
            recipe.run_name('ssql', 0, placement))
    assert recipe.run_name('ssql', 0, 'inputs') == 'ssql_seed0'
    assert recipe.run_name('ssql', 0, 'integer') == 'ssql-integer_seed0'
    simsiam = recipe.train_command(args, 'simsiam', 0, 'integer')
    assert not any('quant_cfg' in part for part in simsiam)
