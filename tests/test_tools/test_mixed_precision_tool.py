"""tools/mixed_precision.py on a zoo checkpoint, and the tools that take its
bits file (bit_sweep, export_onnx)."""
import json
import os
import os.path as osp
import re
import runpy
import shutil
import sys

import pytest
import torch
import yaml

from ssql_mm.models.bit_setting import BitSetting, load_bit_setting
from ssql_mm.models.pretrained import load_pretrained
from ssql_mm.quantization.bit_cost import layer_costs, model_cost

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'mixed_precision.py')
SWEEP = osp.join(ROOT, 'tools', 'bit_sweep.py')
EXPORT = osp.join(ROOT, 'tools', 'deploy', 'export_onnx.py')
# The zoo's SSQL-SimSiam trained with the 'inputs' placement: a bits file
# searched on it records that placement, not the default.
ZOO = osp.join(ROOT, 'checkpoints',
               'ssql-simsiam-inputs_resnet18-w16_1xb128-coslr-2500it_cifar10_'
               '657dd446.pth')
SUBSET = osp.join(ROOT, 'data', 'cifar10_subset')
CLASSES = ('airplane', 'cat', 'ship')


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
    """Real CIFAR-10 images: 8 train and 4 test per class, 3 classes."""
    root = tmp_path_factory.mktemp('images')
    for split, count in (('train', 8), ('test', 4)):
        for name in CLASSES:
            src = osp.join(SUBSET, split, name)
            (root / split / name).mkdir(parents=True)
            for file in sorted(os.listdir(src))[:count]:
                shutil.copy(osp.join(src, file), root / split / name / file)
    return str(root)


def run(tool, argv, monkeypatch):
    monkeypatch.setattr(sys, 'argv', [tool] + [str(a) for a in argv])
    runpy.run_path(tool, run_name='__main__')


def fails(tool, argv, monkeypatch, capsys):
    """The one-line error a tool exits with (printed, or the exit message)."""
    with pytest.raises(SystemExit) as exit_info:
        run(tool, argv, monkeypatch)
    code = exit_info.value.code
    err = [code] if isinstance(code, str) else \
        capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and '\n' not in err[0], err
    return err[0]


@pytest.mark.slow
def test_search_then_sweep_and_export_the_bits_file(tmp_path, data_dir,
                                                    monkeypatch, capsys):
    out = tmp_path / 'bits.yml'
    run(TOOL, [ZOO, '--budget', 'bops=4/4', '--calib-data',
               osp.join(data_dir, 'train'), '--num-images', 20, '--samples',
               1, '--batch-size', 20, '--out', out], monkeypatch)
    printed = capsys.readouterr().out
    assert 'budget bops=4/4: used' in printed
    assert 'time: sensitivity (hessian)' in printed
    assert f'wrote {out}' in printed

    setting = load_bit_setting(out)
    pretrained = load_pretrained(ZOO)
    assert setting.placement == pretrained.placement == 'inputs'
    names = {layer.name for layer in setting.layers}
    assert 'layer2.0.conv1' in names and 'conv1' not in names  # stem pinned
    info = yaml.safe_load(out.read_text())['info']
    assert info['method'] == 'hessian' and info['budgets'] == ['bops=4/4']
    # The file builds a model within the budget: uniform 4/4's BOPs.
    model = pretrained.build(setting)
    uniform = pretrained.build(BitSetting(4, 4))
    example = torch.zeros(1, 3, 32, 32)
    cost = model_cost(model, layer_costs(model, example))
    assert cost['bops'] <= model_cost(uniform, layer_costs(
        uniform, example))['bops']
    assert cost['bops'] == pytest.approx(info['cost']['bops'])
    assert model.layer_bits['conv1'] == (8, None)

    sweep_out = tmp_path / 'sweep'
    run(SWEEP, [ZOO, '--data', data_dir, '--bits', '4/4', f'mixed:{out}',
                '--knn', '--k', 5, '--calib-batches', 1, '--batch-size', 24,
                '--out', sweep_out], monkeypatch)
    result = json.loads((sweep_out / 'bit_sweep.json').read_text())
    assert result['settings'] == ['4w4a', 'mixed:bits']
    scores = next(iter(result['knn'].values()))
    assert 0 <= scores['mixed:bits'] <= 100
    assert result['meta']['mixed']['mixed:bits'] == setting.to_dict()

    onnx_out = tmp_path / 'mixed.onnx'
    run(EXPORT, [ZOO, '--bits', f'mixed:{out}', '--calib-data',
                 osp.join(data_dir, 'train'), '--batch-size', 24,
                 '--calib-batches', 1, '--out', onnx_out], monkeypatch)
    assert onnx_out.stat().st_size > 0
    assert 'quantized layers: 20' in capsys.readouterr().out


def test_bad_budgets_fail_with_one_line(tmp_path, data_dir, monkeypatch,
                                        capsys):
    train = osp.join(data_dir, 'train')
    line = fails(TOOL, [ZOO, '--budget', 'flops=3', '--calib-data', train,
                        '--out', tmp_path / 'b.yml'], monkeypatch, capsys)
    assert line.startswith("mixed_precision: error: Unknown budget 'flops=3'")
    line = fails(TOOL, [ZOO, '--budget', 'avg-bits=1', '--calib-data', train,
                        '--num-images', 4, '--out', tmp_path / 'b.yml'],
                 monkeypatch, capsys)
    assert line.startswith('mixed_precision: error: Budget avg-bits=1 is '
                           'below the cheapest assignment')
    # Every searched weight at 2 bits, the pinned 8-bit stem (432 weights).
    assert re.search(r'raise it to at least 2\.0\d or allow fewer bits',
                     line)
    line = fails(TOOL, [ZOO, '--calib-data', train], monkeypatch, capsys)
    assert line == ('mixed_precision: error: --budget, --out required (or '
                    '--list-layers).')
    assert not (tmp_path / 'b.yml').exists()


def test_list_layers_names_what_a_bits_file_may_use(monkeypatch, capsys):
    run(TOOL, [ZOO, '--list-layers', '--placement', 'paper'], monkeypatch)
    lines = capsys.readouterr().out.splitlines()
    assert 'conv1  layer  w=8  a=fp' in lines
    assert 'layer1.0.conv2  layer  w=free  a=free' in lines
    assert 'layer2.0.conv1  layer  w=free  a=fp' in lines
    assert 'layer1.1.output_quant  activation  a=free' in lines


def test_sweep_refuses_a_bits_file_with_an_unknown_layer(tmp_path, data_dir,
                                                         monkeypatch,
                                                         capsys):
    bits = tmp_path / 'typo.yml'
    bits.write_text('base: 4/4\nlayers:\n  layer5.0.conv1: {w: 2}\n')
    line = fails(SWEEP, [ZOO, '--data', data_dir, '--bits', f'mixed:{bits}',
                         '--out', tmp_path / 'sweep'], monkeypatch, capsys)
    assert line.startswith("bit_sweep: error: mixed:typo: layer "
                           "'layer5.0.conv1' matches no quantizer")
    bits.write_text('base: 4/4\nlayers:\n  layer1.0.conv1: {w: 1}\n')
    line = fails(EXPORT, [ZOO, '--bits', f'mixed:{bits}', '--out',
                          tmp_path / 'm.onnx'], monkeypatch, capsys)
    assert "layer 'layer1.0.conv1' w is 1; use an integer in [2, 16]" in line


def test_one_sensitivity_pass_serves_every_budget(data_dir, monkeypatch):
    from ssql_mm.evaluation import load_split
    from ssql_mm.evaluation import mixed_precision as mp
    images = load_split(osp.join(data_dir, 'train')).images
    passes = []
    measure = mp._sensitivity
    monkeypatch.setattr(mp, '_sensitivity',
                        lambda *args: passes.append(1) or measure(*args))
    options = mp.SearchOptions(method='measured', w_candidates=(2, 8),
                               a_candidates=(4, 8), batch_size=12)
    budget_sets = [['bops=2/4'], ['bops=4/4'], ['size=3/3', 'bops=4/4']]
    results = mp.search_bits_per_budget(ZOO, budget_sets, images, options)
    assert len(passes) == 1
    for result in results:
        for budget in result.budgets:
            assert result.allocation.cost[budget.kind] <= budget.value
    alone = mp.search_bits(ZOO, budget_sets[-1], images, options)
    assert len(passes) == 2
    assert results[-1].setting == alone.setting
    assert results[-1].allocation.cost == alone.allocation.cost
    assert results[0].allocation.cost['bops'] < \
        results[1].allocation.cost['bops']
