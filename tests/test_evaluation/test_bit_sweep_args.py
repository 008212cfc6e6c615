"""bit_sweep's arguments: checked before any work, the zoo preset, zoo names."""
import os.path as osp
import runpy
import sys

import pytest

import ssql_mm.evaluation
from ssql_mm.evaluation.sweep import ZOO_PROTOCOL

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'bit_sweep.py')
ZOO_NAME = 'simsiam_resnet18-w16_1xb128-coslr-2500it_cifar10'


@pytest.fixture
def sweep_calls(monkeypatch, tmp_path):
    """Replace the sweep itself: record its arguments, then stop the tool."""
    calls = []

    def fake_sweep(checkpoints, data, bits, cfg, config=None):
        calls.append(dict(checkpoints=checkpoints, bits=list(bits), cfg=cfg))
        raise SystemExit(0)

    monkeypatch.setattr(ssql_mm.evaluation, 'run_bit_sweep', fake_sweep)
    monkeypatch.setenv('SSQL_MM_HOME', str(tmp_path / 'home'))
    return calls


def run_tool(monkeypatch, *args):
    monkeypatch.setattr(sys, 'argv', [TOOL, *args])
    runpy.run_path(TOOL, run_name='__main__')


def test_unwritable_out_fails_before_the_sweep(monkeypatch, tmp_path, capsys,
                                               sweep_calls):
    ckpt = tmp_path / 'a.pth'
    ckpt.write_bytes(b'')
    blocker = tmp_path / 'taken'
    blocker.write_text('a file where the output folder should go')
    with pytest.raises(SystemExit) as exit_info:
        run_tool(monkeypatch, str(ckpt), '--data', str(tmp_path), '--out',
                 str(blocker))
    assert exit_info.value.code != 0
    assert str(blocker) in str(exit_info.value.code) + capsys.readouterr().err
    assert not sweep_calls


@pytest.mark.parametrize('value', ['0', '-1', 'nan', 'inf'])
def test_bad_temperature_is_refused_at_parse_time(monkeypatch, tmp_path,
                                                  capsys, sweep_calls, value):
    with pytest.raises(SystemExit) as exit_info:
        run_tool(monkeypatch, 'a.pth', '--data', str(tmp_path),
                 '--temperature', value)
    assert exit_info.value.code == 2
    assert '--temperature: must be a finite number > 0' in capsys.readouterr(
    ).err
    assert not sweep_calls


def test_zoo_preset_sets_the_zoo_protocol_and_explicit_options_win(
        monkeypatch, tmp_path, sweep_calls):
    common = [ZOO_NAME, '--data', str(tmp_path), '--out', str(tmp_path / 'o')]
    with pytest.raises(SystemExit):
        run_tool(monkeypatch, *common, '--preset', 'zoo')
    with pytest.raises(SystemExit):
        run_tool(monkeypatch, *common, '--preset', 'zoo', '--bits', '4/4',
                 '--train-per-class', '10')
    with pytest.raises(SystemExit):
        run_tool(monkeypatch, *common)
    zoo, explicit, plain = sweep_calls
    assert zoo['bits'] == list(ZOO_PROTOCOL['bits'])
    assert zoo['cfg'].train_per_class == 1000
    assert explicit['bits'] == ['4/4'] and explicit['cfg'].train_per_class == 10
    assert plain['cfg'].train_per_class is None


def test_a_zoo_name_is_accepted_as_a_checkpoint(monkeypatch, tmp_path,
                                                capsys, sweep_calls):
    with pytest.raises(SystemExit):
        run_tool(monkeypatch, ZOO_NAME, '--data', str(tmp_path), '--out',
                 str(tmp_path / 'o'))
    (path, ) = sweep_calls[0]['checkpoints']
    assert osp.isfile(path) and path.startswith(str(tmp_path / 'home'))
    with pytest.raises(SystemExit) as exit_info:
        run_tool(monkeypatch, 'no-such-model', '--data', str(tmp_path),
                 '--out', str(tmp_path / 'o'))
    assert exit_info.value.code == 1
    assert 'neither a checkpoint file nor a model-zoo name' in \
        capsys.readouterr().err


def test_extract_and_export_accept_a_zoo_name(monkeypatch, tmp_path):
    """The other tools that take a checkpoint take a zoo name too."""
    monkeypatch.setenv('SSQL_MM_HOME', str(tmp_path / 'home'))
    extract = runpy.run_path(osp.join(ROOT, 'tools', 'extract_backbone.py'))
    extract['main']([ZOO_NAME, str(tmp_path / 'backbone.pth')])
    assert osp.getsize(tmp_path / 'backbone.pth') > 1e6
    monkeypatch.setattr(sys, 'argv', [
        'export_onnx.py', ZOO_NAME, '--bits', 'fp', '--out',
        str(tmp_path / 'model.onnx')])
    runpy.run_path(osp.join(ROOT, 'tools', 'deploy', 'export_onnx.py'),
                   run_name='__main__')
    assert osp.getsize(tmp_path / 'model.onnx') > 1e6


def test_mixed_precision_accepts_a_zoo_name(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv('SSQL_MM_HOME', str(tmp_path / 'home'))
    monkeypatch.setattr(sys, 'argv', ['mixed_precision.py', ZOO_NAME,
                                      '--list-layers'])
    runpy.run_path(osp.join(ROOT, 'tools', 'mixed_precision.py'),
                   run_name='__main__')
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith('# ') and 'placement integer' in lines[0]
    assert any(line.startswith('layer1.0.conv1  layer') for line in lines)
    # The download's status went to stderr, not into the tool's output.
    assert not any('Downloading' in line for line in lines)
