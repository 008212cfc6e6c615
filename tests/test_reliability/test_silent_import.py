"""A library import prints nothing on stdout, so the first line a tool
prints is its own: ``--help`` starts with ``usage:``, ``model_zoo.py list``
with a model."""
import glob
import os.path as osp
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from ssql_mm.apis import list_models

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = sorted(glob.glob(osp.join(REPO, 'tools', '**', '*.py'),
                         recursive=True))


def run(args, cwd):
    """Run Python with ``args`` from ``cwd`` (outside the repository)."""
    return subprocess.run([sys.executable, *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_import_prints_nothing_on_stdout(tmp_path):
    done = run(['-c', 'import ssql_mm'], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == ''
    assert 'patched MMEngine' not in done.stderr


def test_model_zoo_list_starts_with_a_model(tmp_path):
    done = run([osp.join(REPO, 'tools', 'model_zoo.py'), 'list'], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    first = done.stdout.splitlines()[0]
    assert first.split()[0] in list_models(), first


@pytest.mark.slow
def test_every_tool_help_starts_with_usage(tmp_path):
    assert len(TOOLS) >= 10
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda tool: run([tool, '--help'], tmp_path),
                                TOOLS))
    wrong = {osp.relpath(tool, REPO): (done.returncode, done.stdout[:200])
             for tool, done in zip(TOOLS, results)
             if done.returncode != 0 or not done.stdout.startswith('usage:')}
    assert not wrong
