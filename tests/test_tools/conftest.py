"""Fixtures of the tool tests."""
import importlib.util
import os.path as osp
from types import ModuleType
from typing import Callable

import pytest

BENCHMARKS = osp.join(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))), 'tools', 'benchmarks')


@pytest.fixture
def load_benchmark(monkeypatch) -> Callable[[str], ModuleType]:
    """Import a ``tools/benchmarks/`` script by name as a fresh module, with
    its folder on ``sys.path`` (the scripts import each other)."""

    def load(name: str) -> ModuleType:
        monkeypatch.syspath_prepend(BENCHMARKS)
        spec = importlib.util.spec_from_file_location(
            name, osp.join(BENCHMARKS, f'{name}.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
