"""Fixtures of the downstream tests: SSQL-like checkpoints, the paste dataset."""
import os.path as osp
from typing import Callable

import pytest
import torch
from downstream_utils import REPO
from mmpretrain.models.backbones import (ResNet, ResNet_CIFAR, ResNetV1c,
                                         ResNetV1d)

BACKBONES = dict(ResNet=ResNet, ResNetV1c=ResNetV1c, ResNetV1d=ResNetV1d,
                 ResNet_CIFAR=ResNet_CIFAR)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread avoids oversubscribing shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='session')
def ssql_checkpoint(tmp_path_factory) -> Callable[..., str]:
    """Factory: write an SSQL-like checkpoint (``backbone.*`` of a float
    mmpretrain ResNet, plus projector keys) and return its path."""
    folder = tmp_path_factory.mktemp('ckpt')

    def make(arch: str = 'ResNet', depth: int = 18, extra: dict = None,
             **kwargs) -> str:
        torch.manual_seed(depth)
        backbone = BACKBONES[arch](depth=depth, **kwargs)
        state = {'backbone.' + k: v for k, v in backbone.state_dict().items()}
        state['neck.mlp.0.weight'] = torch.randn(8, 4)
        state['head.predictor.mlp.0.weight'] = torch.randn(4, 8)
        state.update(extra or {})
        path = str(folder / f'{arch}{depth}_{len(list(folder.iterdir()))}.pth')
        torch.save(dict(state_dict=state, meta=dict(epoch=1)), path)
        return path

    return make


@pytest.fixture(scope='session')
def paste_root(tmp_path_factory) -> str:
    """A tiny paste dataset (16 train / 8 val images of 96x96)."""
    from ssql_mm.datasets.paste_dataset import build_paste_dataset
    root = str(tmp_path_factory.mktemp('paste'))
    build_paste_dataset(
        osp.join(REPO, 'data', 'cifar10_subset', 'test'), root,
        num_train=16, num_val=8, seed=1)
    return root
