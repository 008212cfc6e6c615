"""Downloads: nothing written outside the cache, nothing partial kept,
nothing unverified reused, a deadline that holds from connecting to the last
byte, no more bytes than the index lists or the documented maximum."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ssql_mm.checkpoint.download as download_module
from reliability_utils import zoo_entry
from ssql_mm.apis import download_checkpoint, get_model_entry
from ssql_mm.apis.download import resolve_url
from ssql_mm.checkpoint import (ChecksumError, DownloadError,
                                DownloadTimeoutError, UnsafePathError,
                                cache_path, safe_load, sha256sum)

REPO = Path(__file__).resolve().parents[2]


def _tree(folder: Path) -> list:
    """Every file below ``folder``, relative, hidden ones included."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob('*')
                  if p.is_file())


@pytest.mark.parametrize('file_name', [
    '../x.pth', '../../dir/x.pth', '..', '', 'sub/../../x.pth'])
def test_index_file_names_cannot_leave_the_cache(tmp_path, server, cache,
                                                 index, good_bytes,
                                                 file_name):
    # A file already sitting at the traversal target must survive.
    victim = (cache / file_name).resolve() if file_name else None
    if victim is not None and victim != cache.resolve():
        victim.parent.mkdir(parents=True, exist_ok=True)
        victim.write_bytes(b'precious')
    server.files['x.pth'] = good_bytes
    index([zoo_entry('m', server.url + '/x.pth', file=file_name,
                     body=good_bytes)])
    with pytest.raises(UnsafePathError, match='outside the cache'):
        download_checkpoint('m', progress=False)
    assert server.requests == []
    if victim is not None and victim.is_file():
        assert victim.read_bytes() == b'precious'
    assert _tree(cache) == []


def test_absolute_index_file_name_is_refused(tmp_path, server, cache, index,
                                             good_bytes):
    outside = tmp_path / 'elsewhere' / 'x.pth'
    outside.parent.mkdir()
    outside.write_bytes(b'precious')  # differs from the published hash
    server.files['x.pth'] = good_bytes
    index([zoo_entry('m', server.url + '/x.pth', file=str(outside),
                     body=good_bytes)])
    with pytest.raises(UnsafePathError):
        download_checkpoint('m', progress=False)
    assert outside.read_bytes() == b'precious'
    assert server.requests == []


def test_encoded_traversal_in_a_url_is_refused(tmp_path, server, cache,
                                               good_bytes):
    server.files['..%2F..%2Fx.pth'] = good_bytes
    url = server.url + '/..%2F..%2Fx.pth'
    with pytest.raises(UnsafePathError, match=r"'\.\./\.\./x\.pth'"):
        download_checkpoint(url, progress=False)
    assert not (cache.parent.parent / 'x.pth').exists()
    assert list(tmp_path.rglob('x.pth')) == []


def test_cache_path_keeps_legitimate_names_inside(tmp_path):
    root = tmp_path / 'cache'
    assert cache_path(root, 'a_1234abcd.pth') == (root /
                                                  'a_1234abcd.pth').resolve()
    assert cache_path(root, 'sub/a.pth').parent == (root / 'sub').resolve()
    (tmp_path / 'out').mkdir()
    root.mkdir()
    os.symlink(tmp_path / 'out', root / 'link')
    with pytest.raises(UnsafePathError):
        cache_path(root, 'link/a.pth')  # a link that leads outside


def test_relative_weights_beside_the_index_are_allowed(tmp_path, cache,
                                                       index, good_bytes):
    path = index([zoo_entry('m', 'checkpoints/m_1.pth', body=good_bytes)])
    (path.parent / 'checkpoints').mkdir()
    (path.parent / 'checkpoints' / 'm_1.pth').write_bytes(good_bytes)
    entry = get_model_entry('m')
    assert resolve_url(entry).startswith('file://')
    local = download_checkpoint('m', progress=False)
    assert Path(local) == (cache / 'm_1.pth')
    assert sha256sum(local) == entry.sha256


def test_mirror_still_redirects_committed_files(tmp_path, server, cache,
                                                index, good_bytes,
                                                monkeypatch):
    index([zoo_entry('m', 'checkpoints/m_1.pth', body=good_bytes)])
    server.files['m_1.pth'] = good_bytes
    monkeypatch.setenv('SSQL_MM_BASE_URL', server.url)
    assert download_checkpoint('m', progress=False) == str(cache / 'm_1.pth')
    assert server.requests == ['m_1.pth']


def test_early_close_without_length_or_hash_is_not_kept(server, cache,
                                                        good_bytes):
    server.files['plain.pth'] = good_bytes
    server.modes['plain.pth'] = 'no_length_cut'
    url = server.url + '/plain.pth'
    with pytest.raises(DownloadError, match='not a complete checkpoint'):
        download_checkpoint(url, progress=False)
    assert _tree(cache) == []
    # The next call asks the server again instead of using a cached copy.
    server.modes['plain.pth'] = 'ok'
    path = download_checkpoint(url, progress=False)
    assert safe_load(path)['meta'] == {'epoch': 1}
    assert server.requests == ['plain.pth', 'plain.pth']


def test_unverified_download_is_never_reused(server, cache, good_bytes):
    server.files['plain.pth'] = good_bytes
    url = server.url + '/plain.pth'
    download_checkpoint(url, progress=False)
    download_checkpoint(url, progress=False)
    assert server.requests == ['plain.pth', 'plain.pth']


def test_verified_cache_survives_a_failed_refresh(server, cache, index,
                                                  good_bytes):
    server.files['x.pth'] = good_bytes
    index([zoo_entry('m', server.url + '/x.pth', body=good_bytes)])
    path = Path(download_checkpoint('m', progress=False))
    path.write_bytes(b'bit rot')
    del server.files['x.pth']  # the refresh fails with 404
    with pytest.raises(DownloadError, match='404'):
        download_checkpoint('m', progress=False)
    assert path.read_bytes() == b'bit rot'  # not deleted before a good copy
    tampered = bytearray(good_bytes)
    tampered[len(tampered) // 2] ^= 0xFF  # same size, other bytes
    server.files['x.pth'] = bytes(tampered)
    with pytest.raises(ChecksumError):
        download_checkpoint('m', progress=False)
    assert _tree(cache) == ['x.pth']


def test_trickling_server_hits_the_deadline(server, cache, good_bytes):
    server.files['slow.pth'] = good_bytes
    server.modes['slow.pth'] = 'trickle'
    start = time.monotonic()
    with pytest.raises(DownloadTimeoutError, match='within 1 s'):
        download_checkpoint(server.url + '/slow.pth', progress=False,
                            timeout=30, deadline=1.0)
    assert time.monotonic() - start < 5
    assert _tree(cache) == []


def test_deadline_from_the_environment(server, cache, good_bytes,
                                       monkeypatch):
    server.files['slow.pth'] = good_bytes
    server.modes['slow.pth'] = 'trickle'
    monkeypatch.setenv('SSQL_MM_DOWNLOAD_DEADLINE', '0.5')
    with pytest.raises(DownloadTimeoutError):
        download_checkpoint(server.url + '/slow.pth', progress=False)


def test_trickling_headers_hit_the_deadline(server, cache, good_bytes):
    """A server that never finishes its headers (issue 21, case 3)."""
    server.files['slow.pth'] = good_bytes
    server.modes['slow.pth'] = 'trickle_headers'
    start = time.monotonic()
    with pytest.raises(DownloadTimeoutError, match='within 1 s'):
        download_checkpoint(server.url + '/slow.pth', progress=False,
                            timeout=5, deadline=1.0)
    assert time.monotonic() - start < 4
    # The real tool in its own process, so its stderr is its own; without
    # the deadline the trickle would keep it waiting far past the limit.
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'model_zoo.py'), 'download',
         server.url + '/slow.pth', '--no-progress', '--deadline', '1',
         '--timeout', '5'], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert time.monotonic() - start < 30  # interpreter start-up included
    err = done.stderr.strip().splitlines()
    assert err[-1].startswith('model_zoo: error: Transfer of ')
    assert not any('Traceback' in line for line in err)
    assert _tree(cache) == []


@pytest.mark.parametrize('mode', ['endless', 'announce'])
def test_download_stops_at_the_index_size(server, cache, index, good_bytes,
                                          mode):
    """A mirror sends more than the index's ``Size``: with no length, or
    announcing 300 MiB; the transfer stops within one read of ``Size``."""
    server.files['x.pth'] = good_bytes
    server.modes['x.pth'] = mode
    server.announced['x.pth'] = 300 << 20
    index([zoo_entry('m', server.url + '/x.pth', body=good_bytes)])
    start = time.monotonic()
    with pytest.raises(ChecksumError, match=f'more than the {len(good_bytes)} '
                       'bytes the model index lists') as err:
        download_checkpoint('m', progress=False, deadline=20)
    assert time.monotonic() - start < 5
    assert _tree(cache) == []
    received = int(str(err.value).split('lists (')[1].split()[0])
    if mode == 'announce':  # refused on the header, before the body
        assert received == 300 << 20
    else:
        assert len(good_bytes) < received <= len(good_bytes) + (64 << 10)


def test_plain_url_stops_at_the_maximum(server, cache, good_bytes,
                                        monkeypatch):
    server.files['big.pth'] = good_bytes
    server.modes['big.pth'] = 'endless'
    url = server.url + '/big.pth'
    with pytest.raises(DownloadError, match=r'larger than 1048576 bytes.*'
                       r'--max-mib'):
        download_checkpoint(url, progress=False, deadline=20,
                            max_bytes=1 << 20)
    assert _tree(cache) == []
    # The documented default applies when no maximum is given.
    monkeypatch.setattr(download_module, 'MAX_DOWNLOAD_BYTES', 2 << 20)
    start = time.monotonic()
    with pytest.raises(DownloadError, match='larger than 2097152 bytes'):
        download_checkpoint(url, progress=False, deadline=20)
    assert time.monotonic() - start < 5
    assert _tree(cache) == []
