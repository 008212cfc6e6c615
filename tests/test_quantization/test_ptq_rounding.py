"""AdaRound's rounding, LSQ step sizes and QDrop's drops against their
definitions."""
import math

import pytest
import torch

from ssql_mm.quantization import (QConv2d, WeightFakeQuantize,
                                  fake_quantize_activation)
from ssql_mm.quantization.fake_quantize import ActivationFakeQuantize
from ssql_mm.quantization.ptq import (AdaRound, DroppedStep, LearnedRounding,
                                     LearnedStep, annealed_beta,
                                     rectified_sigmoid,
                                     rectified_sigmoid_inverse,
                                     rounding_regularizer)


def test_rectified_sigmoid_values():
    v = torch.tensor([-20., -1., 0., 1., 20.])
    sig = 1 / (1 + math.exp(-1.))
    expected = torch.tensor([0., (1 - sig) * 1.2 - 0.1, 0.5, sig * 1.2 - 0.1,
                             1.])
    assert torch.allclose(rectified_sigmoid(v), expected, atol=1e-7)
    # the stretch reaches 0 and 1 at finite V (exact zeros, exact ones)
    assert rectified_sigmoid(torch.tensor(-3.)).item() == 0.
    assert rectified_sigmoid(torch.tensor(3.)).item() == 1.


def test_inverse_starts_at_the_fractional_part():
    h = torch.tensor([0., 0.1, 0.25, 0.5, 0.75, 0.999])
    assert torch.allclose(rectified_sigmoid(rectified_sigmoid_inverse(h)), h,
                          atol=1e-6)
    assert rectified_sigmoid_inverse(torch.tensor(0.5)).item() == 0.


def test_regularizer_values():
    h = torch.tensor([0., 1., 0.5, 0.25])
    # 1 - |2h - 1|^beta: 0, 0, 1, 1 - 0.5^beta
    assert rounding_regularizer(h, 2.).item() == pytest.approx(1.75)
    assert rounding_regularizer(h, 20.).item() == pytest.approx(2 - 0.5**20)
    assert rounding_regularizer(torch.tensor([0., 1.]), 3.).item() == 0.


def test_beta_schedule():
    args = dict(iters=100, warmup=0.2, start=20., end=2.)
    assert annealed_beta(0, **args) is None
    assert annealed_beta(19, **args) is None
    assert annealed_beta(20, **args) == pytest.approx(20.)
    assert annealed_beta(60, **args) == pytest.approx(11.)
    assert annealed_beta(100, **args) == pytest.approx(2.)
    assert annealed_beta(0, 10, 0., 8., 4.) == pytest.approx(8.)


def _conv(bits=3):
    torch.manual_seed(0)
    conv = QConv2d(4, 6, 3, w_bits=bits)
    return conv


def test_learned_rounding_starts_at_nearest_and_penalises():
    conv = _conv()
    learner = LearnedRounding(conv.weight_quant, conv.weight, 1e-2,
                              AdaRound(iters=10, warmup=0.5))
    quantizer = WeightFakeQuantize(3)
    quantizer.set_mode('quantize')
    nearest = quantizer(conv.weight.detach())
    assert torch.allclose(learner.quantize(conv.weight), nearest, atol=1e-6)
    assert learner.penalty(4) is None  # warm-up
    learner.training = True
    h = rectified_sigmoid(learner.v)
    expected = 0.01 * (1 - (2 * h - 1).abs().pow(20.)).sum()
    assert torch.allclose(learner.penalty(5), expected)
    learner.detach()


def test_learned_step_starts_at_the_calibrated_quantizer_and_bakes_it():
    quantizer = ActivationFakeQuantize(4)
    x = torch.randn(1000) * 2 + 1
    quantizer.set_mode('observe')
    quantizer(x)
    quantizer.freeze()
    low, high = quantizer.observer.min_val, quantizer.observer.max_val
    learner = LearnedStep(quantizer, 1e-3)
    assert torch.allclose(learner.quantize(x),
                          fake_quantize_activation(x, low, high, 4), atol=1e-6)
    with torch.no_grad():
        learner.ratio.fill_(1.3)
    learned = learner.quantize(x)
    learner.bake()
    learner.detach()
    quantizer.set_mode('quantize')
    assert torch.allclose(quantizer(x), learned, atol=1e-5)


def test_dropped_step_keeps_float_elements_with_the_drop_probability():
    quantizer = ActivationFakeQuantize(2)
    x = torch.rand(20000)
    quantizer.set_range(torch.tensor(0.), torch.tensor(1.))
    gen = torch.Generator().manual_seed(0)
    learner = DroppedStep(quantizer, 1e-3, 0.5, gen)
    quantized = learner.quantize(x)  # not training: never dropped
    learner.training = True
    out = learner.quantize(x)
    kept = (out == x) & (quantized != x)
    share = kept.sum() / (quantized != x).sum()
    assert 0.48 < float(share) < 0.52
    assert torch.equal(out[~kept], quantized[~kept])
    learner.drop_prob = 0.
    assert torch.equal(learner.quantize(x), quantized)
    learner.detach()
