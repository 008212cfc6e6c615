"""Crafted checkpoints: an archive member outside torch's folder, a deflate
bomb and an object-dtype numpy array are refused in one line naming the file,
before anything is inflated or built (issue 21, cases 4 and 6)."""
import io
import runpy
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.core import multiarray

from ssql_mm.checkpoint import (CorruptCheckpointError, UnsafeCheckpointError,
                                check_structure, safe_load)
from ssql_mm.checkpoint.safe_load import MAX_INFLATION

REPO = Path(__file__).resolve().parents[2]


def _rezip(data: bytes, path: Path, extra: dict = None,
           compression: int = zipfile.ZIP_STORED) -> Path:
    """Copy a torch archive member by member, optionally deflated, with
    ``extra`` members added at the top level."""
    with zipfile.ZipFile(io.BytesIO(data)) as src, \
            zipfile.ZipFile(path, 'w') as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            info.compress_type = compression
            dst.writestr(info, body)
        for name, body in (extra or {}).items():
            dst.writestr(name, body)
    return path


def _saved(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _one_line(error: BaseException, path: Path, words: str) -> None:
    message = str(error)
    assert str(path) in message and words in message, message
    assert '\n' not in message


@pytest.mark.parametrize('trusted', [False, True])
def test_member_outside_the_archive_folder(tmp_path, trusted):
    path = _rezip(_saved({'state_dict': {'w': torch.ones(3)}}),
                  tmp_path / 'extra.pth', extra={'extra.txt': b'hello'})
    with pytest.raises(CorruptCheckpointError) as err:
        safe_load(path, trusted=trusted)
    _one_line(err.value, path, 'outside one top-level folder')


def test_extract_tool_reports_the_extra_member_in_one_line(
        tmp_path, capsys, monkeypatch):
    path = _rezip(_saved({'state_dict': {'backbone.w': torch.ones(3)}}),
                  tmp_path / 'extra.pth', extra={'extra.txt': b'hello'})
    tool = str(REPO / 'tools' / 'extract_backbone.py')
    monkeypatch.setattr(sys, 'argv', [tool, str(path),
                                      str(tmp_path / 'out.pth')])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(tool, run_name='__main__')
    assert done.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert not any('Traceback' in line for line in err)
    assert err[-1].startswith('extract_backbone: error: ')
    _one_line(err[-1], path, 'top-level folder')


def test_deflate_bomb_is_refused_before_inflating(tmp_path):
    zeros = _saved({'state_dict': {'w': torch.zeros(1 << 24)}})  # 64 MiB
    path = _rezip(zeros, tmp_path / 'bomb.pth',
                  compression=zipfile.ZIP_DEFLATED)
    assert path.stat().st_size * 100 < len(zeros)  # a thousandfold really
    for trusted in (False, True):
        with pytest.raises(CorruptCheckpointError) as err:
            safe_load(path, trusted=trusted)
        _one_line(err.value, path, f'more than {MAX_INFLATION} times')
    with open(path, 'rb') as stream:
        with pytest.raises(CorruptCheckpointError, match='zip bomb'):
            safe_load(stream)
    assert 'inflates to 64.00 MiB' in check_structure(path)


def test_mildly_compressed_archive_within_the_limit_loads(tmp_path):
    torch.manual_seed(0)
    weights = torch.randn(1 << 12)
    path = _rezip(_saved({'state_dict': {'w': weights}}),
                  tmp_path / 'deflated.pth', compression=zipfile.ZIP_DEFLATED)
    assert torch.equal(safe_load(path)['state_dict']['w'], weights)


class _ObjectDtype:
    """Pickles as ``numpy.dtype('O8', False, True)`` without a ``BUILD``."""

    def __reduce__(self):
        return np.dtype, ('O8', False, True)


class _ObjectArray:
    """Pickles as an object-dtype array holding ``[1, 'x']``."""

    def __reduce__(self):
        return (multiarray._reconstruct, (np.ndarray, (0, ), b'b'),
                (1, (2, ), _ObjectDtype(), False, [1, 'x']))


def test_object_dtype_array_is_refused(tmp_path):
    path = tmp_path / 'objects.pth'
    path.write_bytes(_saved({'meta': {'a': _ObjectArray()}}))
    with pytest.raises(UnsafeCheckpointError) as err:
        safe_load(path)
    _one_line(err.value, path, "numpy.dtype('O8')")


def test_numeric_numpy_values_still_load(tmp_path):
    path = tmp_path / 'numeric.pth'
    values = {'a': np.arange(3, dtype=np.int64), 'b': np.float32(2.5),
              'c': np.ones((2, 2), dtype=np.float16), 'd': np.array([True])}
    path.write_bytes(_saved(values))
    loaded = safe_load(path)
    for key, value in values.items():
        assert loaded[key].dtype == value.dtype
        np.testing.assert_array_equal(loaded[key], value)
