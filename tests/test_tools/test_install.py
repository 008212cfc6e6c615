"""tools/install.sh returns at once when nothing it depends on changed, and
installs again when a requirement changed. Runs the real script on a copy of
the repository files it reads, with a stand-in ``python`` that records its
calls (nothing is installed)."""
import os
import shutil
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest

STUB = textwrap.dedent('''\
    #!/bin/sh
    echo "$*" >> "$STUB_LOG"
    case "$*" in *"pip install"*) [ -z "$STUB_PIP_FAILS" ] || exit 1 ;; esac
    exit 0
''')


@pytest.fixture
def repo(tmp_path, repo_root) -> Path:
    """Copies of install.sh, setup.py and requirements/; a stand-in .venv."""
    root = tmp_path / 'repo'
    (root / 'tools').mkdir(parents=True)
    shutil.copy(Path(repo_root) / 'tools' / 'install.sh', root / 'tools')
    shutil.copy(Path(repo_root) / 'setup.py', root)
    shutil.copytree(Path(repo_root) / 'requirements', root / 'requirements')
    bin_dir = root / '.venv' / 'bin'
    bin_dir.mkdir(parents=True)
    python = bin_dir / 'python'
    python.write_text(STUB)
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    (bin_dir / 'activate').write_text(
        f'VIRTUAL_ENV={root / ".venv"}\nPATH="$VIRTUAL_ENV/bin:$PATH"\n')
    return root


def install(root: Path, *args, pip_fails: bool = False):
    """Run the copied install.sh; returns (exit code, output, python calls)."""
    log = root / 'calls.log'
    log.write_text('')
    env = {k: v for k, v in os.environ.items() if k != 'VIRTUAL_ENV'}
    env.update(STUB_LOG=str(log), STUB_PIP_FAILS='1' if pip_fails else '')
    done = subprocess.run(['bash', str(root / 'tools' / 'install.sh'), *args],
                          env=env, capture_output=True, text=True, timeout=60)
    calls = log.read_text().splitlines()
    return done.returncode, done.stdout + done.stderr, calls


def pip_installs(calls):
    return [c for c in calls if c.startswith('-m pip install')]


def test_unchanged_install_returns_at_once(repo):
    code, out, calls = install(repo)
    assert code == 0, out
    assert calls and (repo / '.venv' / '.ssql_mm-install').is_file()
    code, out, calls = install(repo)
    assert code == 0, out
    assert calls == [] and 'up to date' in out
    code, out, calls = install(repo, '--force')
    assert code == 0 and calls, out


def test_changed_requirement_installs_again(repo):
    assert install(repo)[0] == 0
    with open(repo / 'requirements' / 'runtime.txt', 'a') as f:
        f.write('packaging\n')
    code, out, calls = install(repo)
    assert code == 0, out
    assert any('requirements/runtime.txt' in c for c in pip_installs(calls))
    assert install(repo)[2] == []


def test_changed_script_checks_without_reinstalling(repo):
    assert install(repo)[0] == 0
    with open(repo / 'tools' / 'install.sh', 'a') as f:
        f.write('# a comment\n')
    code, out, calls = install(repo)
    assert code == 0, out
    assert calls and pip_installs(calls) == []
    assert install(repo)[2] == []


def test_failed_install_keeps_the_old_stamp(repo):
    assert install(repo)[0] == 0
    stamp = (repo / '.venv' / '.ssql_mm-install').read_text()
    with open(repo / 'requirements' / 'tests.txt', 'a') as f:
        f.write('packaging\n')
    code, _, calls = install(repo, pip_fails=True)
    assert code != 0 and pip_installs(calls)
    assert (repo / '.venv' / '.ssql_mm-install').read_text() == stamp
    code, out, calls = install(repo)
    assert code == 0 and pip_installs(calls), out
