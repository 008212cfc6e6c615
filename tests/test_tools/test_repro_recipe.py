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
