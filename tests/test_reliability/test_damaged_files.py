"""Empty, truncated, random and malicious checkpoints at every entry point:
damage is named as damage (with the file), a malicious file is refused, no
file's code ever runs, and every tool says it in one line (issue cases 4, 5).
"""
import os.path as osp
import runpy
import sys

import pytest
import torch.nn as nn
from mmengine.registry import DefaultScope
from mmengine.runner import CheckpointLoader, load_checkpoint
from mmpretrain.registry import MODELS

from reliability_utils import DAMAGE_KINDS
from ssql_mm.checkpoint import (CorruptCheckpointError, UnsafeCheckpointError,
                                load_pretrained_state, safe_load)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = 'configs/demo/ssql-simsiam_resnet18-w16_cpu-demo_cifar10-subset.py'
LINEAR = ('configs/benchmarks/linear/'
          'resnet18-cifar_1xb512-linear-steplr-100e_cifar10_4w4a.py')
TINY = ['train_dataloader.dataset.indices=16', 'train_dataloader.batch_size=8',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False', 'train_cfg.max_epochs=1']
EXPECTED = {'empty': (CorruptCheckpointError, 'empty'),
            'truncated': (CorruptCheckpointError, 'damaged or cut short'),
            'random': (CorruptCheckpointError, 'damaged or cut short'),
            'malicious': (UnsafeCheckpointError, 'posix.mkdir')}


def _check(error: BaseException, kind: str, path) -> None:
    kind_error, words = EXPECTED[kind]
    assert isinstance(error, kind_error), repr(error)
    message = str(error)
    assert words in message and str(path) in message and '\n' not in message
    if kind_error is CorruptCheckpointError:
        assert 'trust' not in message  # damage is not a security question
    assert not (path.parent / 'ran').exists()


# Trusting a malicious file runs it, by definition: not a case to test.
@pytest.mark.parametrize('kind,trusted', [(k, False) for k in DAMAGE_KINDS] +
                         [(k, True) for k in DAMAGE_KINDS
                          if k != 'malicious'])
def test_safe_load(damaged, kind, trusted):
    path = damaged(kind)
    with pytest.raises(Exception) as err:
        safe_load(path, trusted=trusted)
    _check(err.value, kind, path)


@pytest.mark.parametrize('kind', DAMAGE_KINDS)
def test_mmengine_loading_resume_and_load_from(damaged, kind):
    path = damaged(kind)
    with pytest.raises(Exception) as err:
        CheckpointLoader.load_checkpoint(str(path))
    _check(err.value, kind, path)
    with pytest.raises(Exception) as err:
        load_checkpoint(nn.Linear(1, 1), str(path))
    _check(err.value, kind, path)


@pytest.mark.parametrize('kind', DAMAGE_KINDS)
def test_downstream_init_cfg(damaged, kind):
    path = damaged(kind)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        backbone = MODELS.build(dict(
            type='QuantResNet_CIFAR', depth=18, w_bits=4, a_bits=4,
            init_cfg=dict(type='Pretrained', checkpoint=str(path),
                          prefix='backbone.')))
    with pytest.raises(Exception) as err:
        backbone.init_weights()
    _check(err.value, kind, path)
    with pytest.raises(Exception) as err:
        load_pretrained_state(str(path), 'backbone.')
    _check(err.value, kind, path)


def _tool_error(capsys, prog: str, exit_info) -> str:
    """The one line a tool printed for its error."""
    code = exit_info.value.code
    if isinstance(code, str):  # SystemExit('prog: error: ...')
        line = code
    else:
        assert code == 1
        err = capsys.readouterr().err.strip().splitlines()
        line = err[-1]
        assert not any('Traceback' in e for e in err)
    assert line.startswith(f'{prog}: error: ') and '\n' not in line
    return line


def _run_tool(monkeypatch, tool: str, *args: str):
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(sys, 'argv', [tool, *args])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(tool, run_name='__main__')
    return exit_info


def _check_line(line: str, kind: str, path) -> None:
    assert str(path) in line and EXPECTED[kind][1] in line
    assert not (path.parent / 'ran').exists()


@pytest.mark.parametrize('kind', DAMAGE_KINDS)
def test_extract_backbone_tool(damaged, kind, capsys, monkeypatch, tmp_path):
    path = damaged(kind)
    exit_info = _run_tool(monkeypatch, 'tools/extract_backbone.py', str(path),
                          str(tmp_path / 'out.pth'))
    _check_line(_tool_error(capsys, 'extract_backbone', exit_info), kind, path)
    assert not (tmp_path / 'out.pth').exists()
    if kind in ('random', 'truncated'):  # trusted: still refused, unread
        exit_info = _run_tool(monkeypatch, 'tools/extract_backbone.py',
                              str(path), str(tmp_path / 'out.pth'),
                              '--trust-checkpoint')
        _check_line(_tool_error(capsys, 'extract_backbone', exit_info), kind,
                    path)


@pytest.mark.parametrize('kind', DAMAGE_KINDS)
def test_bit_sweep_tool(damaged, kind, capsys, monkeypatch, cifar_subset):
    path = damaged(kind)
    exit_info = _run_tool(monkeypatch, 'tools/bit_sweep.py', str(path),
                          '--data', cifar_subset, '--bits', 'fp')
    _check_line(_tool_error(capsys, 'bit_sweep', exit_info), kind, path)


@pytest.mark.parametrize('kind', DAMAGE_KINDS)
def test_train_resume_and_test_tools(damaged, kind, capsys, monkeypatch,
                                     tmp_path, cifar_subset):
    path = damaged(kind)
    exit_info = _run_tool(monkeypatch, 'tools/train.py', DEMO, '--work-dir',
                          str(tmp_path / 'train'), '--resume', str(path),
                          '--cfg-options', *TINY)
    _check_line(_tool_error(capsys, 'train', exit_info), kind, path)
    roots = [f'{loader}_dataloader.dataset.data_root={cifar_subset}'
             for loader in ('train', 'val', 'test')]
    exit_info = _run_tool(monkeypatch, 'tools/test.py', LINEAR, str(path),
                          '--work-dir', str(tmp_path / 'test'),
                          '--cfg-options', *roots,
                          'test_dataloader.num_workers=0')
    _check_line(_tool_error(capsys, 'test', exit_info), kind, path)


def test_empty_pointer_is_reported_before_any_work(tmp_path, capsys,
                                                   monkeypatch):
    work_dir = tmp_path / 'run'
    work_dir.mkdir()
    (work_dir / 'last_checkpoint').write_text('')
    exit_info = _run_tool(monkeypatch, 'tools/train.py', DEMO, '--work-dir',
                          str(work_dir), '--resume', '--cfg-options', *TINY)
    line = _tool_error(capsys, 'train', exit_info)
    assert 'last_checkpoint' in line and 'is empty' in line
    assert sorted(p.name for p in work_dir.iterdir()) == ['last_checkpoint']
