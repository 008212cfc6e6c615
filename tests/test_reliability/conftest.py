"""Fixtures of the fault-injection suite: a misbehaving 127.0.0.1 server, a
small checkpoint, damaged copies of it and a model index to point at them."""
import pickle
from pathlib import Path
from typing import Callable, Dict, List

import pytest
import torch
import yaml

import ssql_mm  # noqa: F401  (applies the MMEngine patches)
from faulty_server import FaultyServer
from reliability_utils import RunsCode
from ssql_mm.checkpoint import checkpoint_bytes


@pytest.fixture
def server():
    faulty = FaultyServer()
    yield faulty
    faulty.close()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """``$SSQL_MM_HOME`` under tmp; returns the checkpoint cache folder."""
    monkeypatch.setenv('SSQL_MM_HOME', str(tmp_path / 'home'))
    monkeypatch.delenv('SSQL_MM_BASE_URL', raising=False)
    monkeypatch.delenv('SSQL_MM_DOWNLOAD_DEADLINE', raising=False)
    return tmp_path / 'home' / 'checkpoints'


@pytest.fixture(scope='session')
def good_bytes() -> bytes:
    """A small, valid checkpoint file (state dict under 'state_dict')."""
    torch.manual_seed(0)
    return checkpoint_bytes({'meta': {'epoch': 1},
                             'state_dict': {'w': torch.randn(64, 64)}})


@pytest.fixture
def index(tmp_path, monkeypatch) -> Callable[[List[Dict]], Path]:
    """Write a model index with the given ``Models`` and make it current."""

    def write(models: List[Dict]) -> Path:
        root = tmp_path / 'zoo'
        root.mkdir(exist_ok=True)
        path = root / 'model-index.yml'
        path.write_text(yaml.safe_dump({'Models': models}))
        monkeypatch.setenv('SSQL_MM_MODEL_INDEX', str(path))
        return path

    return write


@pytest.fixture
def damaged(tmp_path, good_bytes) -> Callable[[str], Path]:
    """Factory: a damaged or malicious checkpoint file of the given kind.

    The malicious one would create ``tmp_path / 'ran'`` if unpickled.
    """

    def make(kind: str) -> Path:
        path = tmp_path / f'{kind}.pth'
        if kind == 'empty':
            path.write_bytes(b'')
        elif kind == 'truncated':
            path.write_bytes(good_bytes[:len(good_bytes) * 2 // 3])
        elif kind == 'random':
            path.write_bytes(bytes(
                torch.randint(0, 256, (4096, ),
                              generator=torch.Generator().manual_seed(1),
                              dtype=torch.uint8).tolist()))
        elif kind == 'malicious':
            with open(path, 'wb') as f:
                pickle.dump({'state_dict': {},
                             'x': RunsCode(str(tmp_path / 'ran'))}, f,
                            protocol=2)
        else:
            raise ValueError(kind)
        return path

    return make
