"""Temporary ``.partial`` files: a live writer's file is never removed,
whichever PID namespace it runs in; a dead writer's file is (issue 21,
case 6)."""
import fcntl
import os
import subprocess
import sys
import textwrap

from ssql_mm.checkpoint import atomic_write_bytes, remove_stale_partials
from ssql_mm.checkpoint.io import PARTIAL_SUFFIX

HEX = '0123456789abcdef' * 2


def _partials(folder) -> list:
    return sorted(n for n in os.listdir(folder) if n.endswith(PARTIAL_SUFFIX))


def test_writer_in_another_pid_namespace_keeps_its_file(tmp_path):
    """A writer in another PID namespace knows itself by a PID that names no
    live process here (the child pretends to have one that cannot exist).
    Its temporary file must survive a write of ours into the same folder,
    and its rename must succeed."""
    script = textwrap.dedent(f'''
        import os, sys
        os.getpid = lambda: 1 << 22  # above the largest pid_max
        from ssql_mm.checkpoint import atomic_write

        def write(f):
            f.write(b'child')
            f.flush()
            print('writing', flush=True)
            sys.stdin.readline()

        atomic_write({str(tmp_path / 'child.pth')!r}, write)
    ''')
    child = subprocess.Popen([sys.executable, '-c', script],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        for line in child.stdout:  # skip what importing may print
            if line == 'writing\n':
                break
        [theirs] = _partials(tmp_path)
        atomic_write_bytes(b'parent', tmp_path / 'parent.pth')
        assert _partials(tmp_path) == [theirs]
        _, err = child.communicate('\n', timeout=120)
        assert child.returncode == 0, err[-2000:]
    finally:
        child.kill()
        child.wait()
    assert (tmp_path / 'child.pth').read_bytes() == b'child'
    assert (tmp_path / 'parent.pth').read_bytes() == b'parent'
    assert _partials(tmp_path) == []


def test_dead_writers_files_are_removed_live_ones_kept(tmp_path):
    dead = tmp_path / f'.a.pth.{HEX}{PARTIAL_SUFFIX}'
    live = tmp_path / f'.b.pth.{HEX[::-1]}{PARTIAL_SUFFIX}'
    foreign = tmp_path / '.c.pth.some-other-tool.partial'
    for path in (dead, live, foreign):
        path.write_bytes(b'half')
    with open(live, 'rb') as held:  # a writer (any process) holds its lock
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        assert remove_stale_partials(tmp_path) == 1
    assert not dead.exists()
    assert live.exists() and foreign.exists()


def test_killed_writers_file_goes_with_the_next_write(tmp_path):
    script = textwrap.dedent(f'''
        import os, signal
        from ssql_mm.checkpoint import atomic_write

        def write(f):
            f.write(b'half')
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)

        atomic_write({str(tmp_path / 'x.pth')!r}, write)
    ''')
    done = subprocess.run([sys.executable, '-c', script], capture_output=True,
                          timeout=120)
    assert done.returncode == -9, done.stderr[-2000:]
    assert len(_partials(tmp_path)) == 1 and not (tmp_path / 'x.pth').exists()
    atomic_write_bytes(b'whole', tmp_path / 'y.pth')
    assert _partials(tmp_path) == []
