"""Fixtures shared by the whole suite."""
import os.path as osp

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='session')
def repo_root() -> str:
    """The repository root (configs/, tools/ and data/ live there)."""
    return REPO_ROOT


@pytest.fixture(scope='session')
def cifar_subset() -> str:
    """Root of the committed real CIFAR-10 subset (train/ and test/)."""
    root = osp.join(REPO_ROOT, 'data', 'cifar10_subset')
    assert osp.isdir(osp.join(root, 'train')), 'data/cifar10_subset is missing'
    return root


@pytest.fixture(autouse=True)
def mmpretrain_default_scope():
    """Run every test in mmpretrain's registry scope, whatever scope an
    earlier test (mmdet, mmseg) left as the current default."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield
