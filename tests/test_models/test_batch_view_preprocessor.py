"""BatchViewPreprocessor: views from a uint8 batch, reproducible by seed."""
import pytest
import torch

from ssql_mm.datasets.cifar10_norm import CIFAR10_MEAN, CIFAR10_STD
from ssql_mm.models import BatchViewPreprocessor


def _batch(n=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8,
                           generator=gen)
    return {'inputs': images, 'data_samples': None}


def _pre(**kwargs):
    return BatchViewPreprocessor(mean=CIFAR10_MEAN, std=CIFAR10_STD, **kwargs)


def test_training_gives_normalised_views_of_the_right_shape():
    out = _pre(seed=0, channels_last=True)(_batch(), training=True)
    views = out['inputs']
    assert len(views) == 2
    for v in views:
        assert v.shape == (8, 3, 32, 32) and v.dtype == torch.float32
        assert v.is_contiguous(memory_format=torch.channels_last)
    assert not torch.equal(views[0], views[1])  # two different draws


def test_identity_augmentation_is_exactly_normalisation():
    pre = _pre(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), jitter=None,
               gray_prob=0.0, flip_prob=0.0, num_views=1, seed=0)
    batch = _batch()
    (view, ) = pre(batch, training=True)['inputs']
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    expected = (batch['inputs'].float() - mean) / std
    assert torch.allclose(view, expected, atol=1e-3)


def test_views_are_reproducible_under_a_seed():
    a = _pre(seed=7)(_batch(), training=True)['inputs']
    b = _pre(seed=7)(_batch(), training=True)['inputs']
    c = _pre(seed=8)(_batch(), training=True)['inputs']
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])
    torch.manual_seed(3)
    d = _pre()(_batch(), training=True)['inputs']
    torch.manual_seed(3)
    e = _pre()(_batch(), training=True)['inputs']
    assert torch.equal(d[0], e[0])  # without a seed: torch's global RNG


def test_eval_normalises_only_and_bad_input_is_named():
    pre = _pre(seed=0)
    batch = _batch()
    out = pre(batch, training=False)['inputs']
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    assert torch.allclose(out, (batch['inputs'].float() - mean) / std)
    with pytest.raises(TypeError, match='PackInputs'):
        pre({'inputs': batch['inputs'].float(), 'data_samples': None},
            training=True)
    with pytest.raises(ValueError, match='num_views'):
        _pre(num_views=0)
