"""Every CIFAR-10 config normalises with the package's CIFAR-10 statistics."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from ssql_mm.datasets import CIFAR10_MEAN, CIFAR10_STD

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*cifar10*.py'),
                         recursive=True) if '_base_' not in p)


def test_cifar10_configs_are_found():
    names = [osp.basename(p) for p in CONFIGS]
    assert len(names) >= 10
    assert 'simsiam_resnet18-w16_1xb128-coslr-2500it_cifar10.py' in names
    assert 'retinanet_ssql-r18-w16-fp_paste-cifar10-96x96.py' in names


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.relpath(p, ROOT) for p in CONFIGS])
def test_config_normalises_with_cifar10_statistics(path):
    cfg = Config.fromfile(path, import_custom_modules=False)
    preprocessor = cfg.model.get('data_preprocessor') or cfg.data_preprocessor
    assert tuple(preprocessor.mean) == CIFAR10_MEAN
    assert tuple(preprocessor.std) == CIFAR10_STD
