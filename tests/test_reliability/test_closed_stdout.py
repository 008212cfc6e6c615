"""A reader that stops early (``tool | head -1``) ends a tool quietly: no
traceback, status 141 (as a command killed by SIGPIPE), and the tool's files
are written all the same (issue 21)."""
import ast
import glob
import os
import subprocess
import sys
from pathlib import Path
from typing import List, TextIO, Tuple

import pytest

from reliability_utils import REPO, write_backbone_checkpoint, zoo_entry
from ssql_mm.checkpoint import CLOSED_STDOUT_STATUS, report_errors

# More than a pipe holds (64 KiB) and a reader's first read (8 KiB), so the
# tool is still writing when the reader goes away.
BIG_ZOO = 3000


def _closed_pipe_stdout(monkeypatch) -> TextIO:
    """Make ``sys.stdout`` a pipe whose reading end is already closed."""
    read, write = os.pipe()
    os.close(read)
    stream = open(write, 'w')
    monkeypatch.setattr(sys, 'stdout', stream)
    return stream


def test_report_errors_ends_quietly_on_a_closed_stdout(monkeypatch):
    stream = _closed_pipe_stdout(monkeypatch)
    with pytest.raises(SystemExit) as done:
        with report_errors('tool'):
            print('first line')  # buffered: the pipe breaks at the flush
    assert done.value.code == CLOSED_STDOUT_STATUS == 141
    # What is still buffered goes nowhere, without another error at exit.
    print('more')
    stream.flush()
    stream.close()


def test_a_broken_pipe_elsewhere_stays_an_error(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, 'stdout', open(tmp_path / 'out.txt', 'w'))
    with pytest.raises(BrokenPipeError):
        with report_errors('tool'):
            raise BrokenPipeError(32, 'Broken pipe')  # a socket, a worker
    sys.stdout.close()


def _run_reader_closes(args: List[str], lines: int,
                       tmp_path: Path) -> Tuple[int, str, List[str]]:
    """Run ``python args`` from the repository root with stdout into a pipe
    whose reader takes ``lines`` lines (0: none) and then closes it; return
    the exit status, stderr and the lines read."""
    err_path = tmp_path / 'stderr.txt'
    with open(err_path, 'w') as err:
        proc = subprocess.Popen([sys.executable, *args], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=err,
                                text=True)
    try:
        got = [proc.stdout.readline() for _ in range(lines)]
        proc.stdout.close()
        code = proc.wait(timeout=900)
    finally:
        proc.kill()
    return code, err_path.read_text(), got


@pytest.mark.parametrize('command,lines', [
    (['list'], 1),  # the reader goes while the tool is still writing
    (['list', '--names'], 1),
    (['table'], 0),  # the reader is gone before the first line
    (['info', '{first}'], 0),  # a few lines, still buffered at the end
])
def test_model_zoo_into_a_reader_that_closes_early(tmp_path, index, command,
                                                   lines):
    names = [f'ssql-simsiam_resnet18-w16_big-zoo-{i:05d}_cifar10'
             for i in range(BIG_ZOO)]
    path = index([zoo_entry(name, f'https://example.invalid/{name}.pth')
                  for name in names])
    code, err, got = _run_reader_closes(
        ['tools/model_zoo.py', '--index', str(path),
         *[arg.format(first=names[0]) for arg in command]], lines, tmp_path)
    assert 'Traceback' not in err and 'Broken pipe' not in err, err[-3000:]
    assert code == CLOSED_STDOUT_STATUS, err[-3000:]
    assert [line.split()[0] for line in got] == names[:lines]


def test_a_tool_writes_its_file_before_the_closed_pipe_ends_it(tmp_path):
    checkpoint = write_backbone_checkpoint(tmp_path / 'ssl.pth')
    out = tmp_path / 'backbone.pth'
    code, err, _ = _run_reader_closes(
        ['tools/extract_backbone.py', checkpoint, str(out), '--format',
         'mmpretrain'], 0, tmp_path)
    assert 'Traceback' not in err and 'Broken pipe' not in err, err[-3000:]
    assert code == CLOSED_STDOUT_STATUS, err[-3000:]
    assert out.stat().st_size > 0


def _unguarded_prints(path: str) -> List[int]:
    """Lines of ``print`` calls to stdout in a tool's ``main`` / ``run`` that
    no ``with report_errors(...)`` encloses."""
    with open(path) as f:
        tree = ast.parse(f.read())
    lines = []

    def visit(node: ast.AST, guarded: bool) -> None:
        if isinstance(node, ast.With) and any(
                isinstance(item.context_expr, ast.Call)
                and getattr(item.context_expr.func, 'id', '') ==
                'report_errors' for item in node.items):
            guarded = True
        if (isinstance(node, ast.Call)
                and getattr(node.func, 'id', '') == 'print' and not guarded
                and not any(k.arg == 'file' for k in node.keywords)):
            lines.append(node.lineno)
        for child in ast.iter_child_nodes(node):
            visit(child, guarded)

    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in ('main', 'run'):
            visit(node, False)
    return lines


def test_every_tool_prints_inside_report_errors():
    tools = sorted(glob.glob(os.path.join(REPO, 'tools', '**', '*.py'),
                             recursive=True))
    assert len(tools) >= 10
    loose = {}
    for tool in tools:
        lines = _unguarded_prints(tool)
        if lines:
            loose[os.path.relpath(tool, REPO)] = lines
    assert not loose, loose  # a closed pipe there ends in a traceback
