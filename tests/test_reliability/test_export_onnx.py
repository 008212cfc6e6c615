"""ONNX export: a crash or a full disk never leaves a damaged ``.onnx`` under
the real name, and an output that cannot be written is refused before any
image is read (issue 21, case 1)."""
import errno
import os
import runpy
import subprocess
import sys
import textwrap

import onnx
import pytest

import ssql_mm.evaluation
from reliability_utils import write_backbone_checkpoint
from ssql_mm.checkpoint import CheckpointWriteError, check_writable

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
TOOL = os.path.join(REPO, 'tools', 'deploy', 'export_onnx.py')


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory) -> str:
    return write_backbone_checkpoint(tmp_path_factory.mktemp('ckpt') /
                                     'ssl.pth')


def _export(monkeypatch, *args: str) -> int:
    monkeypatch.setattr(sys, 'argv', [TOOL, *args])
    try:
        runpy.run_path(TOOL, run_name='__main__')
    except SystemExit as done:
        return done.code
    return 0


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and not any('Traceback' in line for line in err), err
    assert err[-1].startswith('export_onnx: error: ')
    return err[-1]


def _good_previous(path) -> bytes:
    """A valid earlier export at ``path``; returns its bytes."""
    model = onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node('Identity', ['x'], ['y'])], 'previous',
        [onnx.helper.make_tensor_value_info('x', onnx.TensorProto.FLOAT,
                                            [1])],
        [onnx.helper.make_tensor_value_info('y', onnx.TensorProto.FLOAT,
                                            [1])]))
    data = model.SerializeToString()
    path.write_bytes(data)
    return data


def test_full_disk_is_one_line_and_keeps_the_previous_model(
        tmp_path, checkpoint, monkeypatch, capsys):
    out = tmp_path / 'model.onnx'
    before = _good_previous(out)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(os, 'fsync', full)
    code = _export(monkeypatch, checkpoint, '--bits', 'fp', '--out',
                   str(out))
    assert code == 1
    line = _error_line(capsys)
    assert str(out) in line and 'free some space' in line
    assert out.read_bytes() == before
    assert os.listdir(tmp_path) == ['model.onnx']  # no temporary file left


def test_kill_while_writing_keeps_the_previous_model(tmp_path, checkpoint):
    """The exporter is killed by the kernel (SIGXFSZ, as with ``kill -9``)
    once it has written 64 KiB: the real name keeps the previous model."""
    out = tmp_path / 'model.onnx'
    before = _good_previous(out)
    script = textwrap.dedent(f'''
        import resource, runpy, signal, sys
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, 1 << 16))
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it
        sys.argv = [{TOOL!r}, {checkpoint!r}, '--bits', 'fp',
                    '--out', {str(out)!r}]
        runpy.run_path({TOOL!r}, run_name='__main__')
    ''')
    done = subprocess.run([sys.executable, '-c', script], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode < 0, done.stderr[-2000:]  # killed by a signal
    assert out.read_bytes() == before
    onnx.checker.check_model(onnx.load(str(out)))
    # A later export into the folder removes the dead writer's leftover.
    subprocess.run([sys.executable, TOOL, checkpoint, '--bits', 'fp',
                    '--out', str(out)], cwd=REPO, check=True,
                   capture_output=True, timeout=300)
    assert os.listdir(tmp_path) == ['model.onnx']
    onnx.checker.check_model(onnx.load(str(out)))


@pytest.mark.parametrize('where', ['folder', 'under_a_file'])
def test_unwritable_output_is_refused_before_any_image_is_read(
        tmp_path, checkpoint, monkeypatch, capsys, cifar_subset, where):
    (tmp_path / 'file.txt').write_text('not a folder')
    out = {'folder': tmp_path, 'under_a_file':
           tmp_path / 'file.txt' / 'model.onnx'}[where]

    def must_not_run(*args, **kwargs):
        raise AssertionError('images were read before the output check')

    monkeypatch.setattr(ssql_mm.evaluation, 'load_split', must_not_run)
    code = _export(monkeypatch, checkpoint, '--calib-data',
                   os.path.join(cifar_subset, 'train'), '--out', str(out))
    assert code == 1
    assert str(out) in _error_line(capsys)
    assert sorted(os.listdir(tmp_path)) == ['file.txt']


def test_check_writable_leaves_nothing_behind(tmp_path):
    check_writable(tmp_path / 'sub' / 'model.onnx')
    assert os.listdir(tmp_path / 'sub') == []
    with pytest.raises(CheckpointWriteError, match='is a folder'):
        check_writable(tmp_path / 'sub')
