"""Sensitivities (Hutchinson traces, measured drift) and layer costs."""
import math

import pytest
import torch
from mmpretrain.registry import MODELS
from torch import nn

import ssql_mm.models  # noqa: F401
from ssql_mm.quantization import (QuantMode, calibrate, fake_quantize_weight,
                                  quantize_model, set_quant_mode)
from ssql_mm.quantization.bit_cost import (activation_quantizers,
                                           assignment_cost, layer_costs,
                                           model_bits, model_cost)
from ssql_mm.quantization.hutchinson import hutchinson_samples
from ssql_mm.quantization.sensitivity import (hessian_sensitivity,
                                              measured_sensitivity,
                                              search_space)

ARCH = dict(type='QuantResNet_CIFAR', depth=18, stem_channels=4,
            base_channels=4, w_bits=4, a_bits=4)


def random_matrix(n, seed):
    gen = torch.Generator().manual_seed(seed)
    m = torch.randn(n, n, generator=gen, dtype=torch.float64)
    return m + m.T


def test_hutchinson_matches_the_exact_traces_of_a_quadratic():
    # L = x'Ax/2 + y'By/2 + x'Cy: blocks H_xx = A, H_yy = B, coupled by C.
    a, b = random_matrix(6, 0), random_matrix(4, 1)
    c = torch.randn(6, 4, generator=torch.Generator().manual_seed(2),
                    dtype=torch.float64) * 5
    x = torch.randn(6, dtype=torch.float64, requires_grad=True)
    y = torch.randn(4, dtype=torch.float64, requires_grad=True)
    unused = torch.randn(3, dtype=torch.float64, requires_grad=True)
    loss = 0.5 * x @ a @ x + 0.5 * y @ b @ y + x @ c @ y
    count = 4000
    samples = hutchinson_samples(loss, [x, y, unused], count,
                                 torch.Generator().manual_seed(0))
    assert samples.shape == (count, 3)
    for k, h in enumerate((a, b)):
        # Variance of one Rademacher sample: 2 (||H||_F^2 - sum diag^2).
        sigma = math.sqrt(2 * (h.pow(2).sum() - h.diag().pow(2).sum()))
        mean = float(samples[:, k].mean())
        assert abs(mean - float(h.trace())) < 4 * sigma / math.sqrt(count)
        assert float(samples[:, k].std()) == pytest.approx(sigma, rel=0.1)
    assert samples[:, 2].abs().max() == 0  # the loss does not reach it


def test_hutchinson_is_exact_for_a_diagonal_hessian():
    x = torch.randn(5, requires_grad=True)
    d = torch.tensor([1., 2., 3., 4., 5.])
    samples = hutchinson_samples((d * x * x).sum(), [x], 3)
    torch.testing.assert_close(samples[:, 0],
                               torch.full((3, ), 30., dtype=torch.float64))


def linear_model(out_features=3, in_features=5, seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(in_features, out_features))
    quantize_model(model, 4, 4)
    return model


def test_hessian_equals_measured_drift_when_the_features_are_linear():
    # Features W x + b on one-hot inputs: the drift of a weight perturbation
    # is ||dW||^2 / N and its Hessian 2/N * I, whose trace Hutchinson gets
    # exactly, so the two methods must agree to float precision.
    model = linear_model()
    batches = [torch.eye(5)[:3], torch.eye(5)[3:]]
    calibrate(model, batches)
    measured = measured_sensitivity(model, batches, (2, 3, 8), (4, ))
    hessian = hessian_sensitivity(model, batches, (2, 3, 8), (4, ),
                                  num_samples=2)
    weight = model[0].weight.detach()
    for bits in (2, 3, 8):
        expected = float((fake_quantize_weight(weight, bits) -
                          weight).pow(2).sum()) / 5
        assert measured.weights['0'][bits] == pytest.approx(expected,
                                                            rel=1e-5)
        assert hessian.weights['0'][bits] == pytest.approx(expected,
                                                           rel=1e-4)
    # One-hot inputs are exact on the [0, 1] grid at every bit-width.
    assert measured.activations['0'][4] == pytest.approx(0, abs=1e-12)
    assert hessian.activations['0'][4] == pytest.approx(0, abs=1e-12)
    assert model[0].weight.requires_grad  # restored


@pytest.fixture(scope='module')
def tiny_resnet():
    torch.manual_seed(0)
    model = MODELS.build(dict(ARCH, placement='paper'))
    model.eval()
    images = torch.randn(4, 3, 16, 16)
    calibrate(model, [images])
    return model, images


def test_measured_drift_is_the_drift_of_one_quantizer_alone(tiny_resnet):
    model, images = tiny_resnet
    layers, acts = search_space(model)
    assert 'conv1' not in layers and 'layer1.0.input_quant' not in acts
    assert 'layer1.0.output_quant' in acts and 'layer2.0.conv1' not in acts
    sens = measured_sensitivity(model, [images[:2], images[2:]], (2, 8),
                                (4, 8))
    assert set(sens.weights) == set(layers)
    assert set(sens.activations) == set(acts)
    # The definition, by hand: layer3.0.conv2's weight alone at 2 bits.
    with torch.no_grad():
        set_quant_mode(model, QuantMode.FLOAT)
        reference = model(images)[-1].flatten(1)
        quantizer = dict(model.named_modules())['layer3.0.conv2'].weight_quant
        quantizer.bits = 2
        quantizer.set_mode(QuantMode.QUANTIZE)
        drift = (model(images)[-1].flatten(1) - reference).pow(2).sum(1)
        quantizer.bits = 4
        set_quant_mode(model, QuantMode.QUANTIZE)
    assert sens.weights['layer3.0.conv2'][2] == pytest.approx(
        float(drift.mean()), rel=1e-5)
    for drifts in list(sens.weights.values()) + list(
            sens.activations.values()):
        lowest, highest = min(drifts), max(drifts)
        assert drifts[lowest] > drifts[highest] >= 0
    # The model is left as it was: quantizing at its own bits.
    assert all(q.mode == QuantMode.QUANTIZE for q in acts.values())
    assert dict(model.named_modules())['layer3.0.conv2'].weight_quant.bits \
        == 4


def test_hessian_drift_tracks_the_measured_drift(tiny_resnet):
    model, images = tiny_resnet
    hessian = hessian_sensitivity(model, [images], (2, 8), (4, 8),
                                  num_samples=4)
    measured = measured_sensitivity(model, [images], (2, 8), (4, 8))
    for name in hessian.weights:
        assert hessian.weights[name][2] > hessian.weights[name][8] >= 0
        mean, error = hessian.traces[f'w:{name}']
        assert mean >= 0 and error >= 0
    # Second order in a small perturbation: close to the measured drift.
    for name, drifts in measured.weights.items():
        assert hessian.weights[name][8] == pytest.approx(drifts[8], rel=0.8)


def test_layer_costs_macs_feeders_and_uniform_cost():
    torch.manual_seed(0)
    example = torch.randn(2, 3, 16, 16)
    paper = MODELS.build(dict(ARCH, placement='paper'))
    costs = layer_costs(paper, example)
    # 3x3 stem conv, 3 -> 4 channels on 16 x 16, per image.
    assert costs['conv1'].macs == 16 * 16 * 4 * 3 * 3 * 3
    assert costs['conv1'].params == 4 * 3 * 3 * 3
    assert costs['conv1'].feeder is None  # the image stays float
    assert costs['layer2.0.downsample.0'].macs == 8 * 8 * 8 * 4
    # paper: a block's convs read the codes of the previous block's output.
    assert costs['layer1.0.conv1'].feeder == 'layer1.0.input_quant'
    assert costs['layer2.0.conv1'].feeder == 'layer1.1.output_quant'
    assert costs['layer2.0.downsample.0'].feeder == 'layer1.1.output_quant'
    assert costs['layer2.0.conv2'].feeder == 'layer2.0.conv2'
    # A conv's own input quantizer quantizes only that conv's input: when a
    # bits file turns on the first conv's, the downsample conv reading the
    # same tensor still reads the block input's codes.
    named = MODELS.build(dict(ARCH, placement='paper', mixed=dict(
        layers={'layer2.0.conv1': {'a': 8}})))
    named_costs = layer_costs(named, example)
    assert named_costs['layer2.0.conv1'].feeder == 'layer2.0.conv1'
    assert named_costs['layer2.0.downsample.0'].feeder == \
        'layer1.1.output_quant'
    inputs = MODELS.build(dict(ARCH, placement='inputs'))
    assert layer_costs(inputs, example)['layer2.0.conv1'].feeder == \
        'layer2.0.conv1'

    w_bits, a_bits = model_bits(paper)
    expected_bops = sum(
        c.macs * (w_bits[n] or 32) *
        (32 if c.feeder is None else a_bits[c.feeder] or 32)
        for n, c in costs.items())
    cost = model_cost(paper, costs)
    assert cost['bops'] == expected_bops
    params = sum(c.params for c in costs.values())
    stem = costs['conv1'].params
    assert cost['size'] == (stem * 8 + (params - stem) * 4) / 8
    assert cost['avg-bits'] == pytest.approx(cost['size'] * 8 / params)
    w_bits['layer2.0.conv1'] = 2
    assert assignment_cost(costs, w_bits, a_bits)['bops'] == \
        expected_bops - costs['layer2.0.conv1'].macs * 2 * 4
    assert set(activation_quantizers(paper)) >= {'conv1',
                                                 'layer1.0.output_quant'}


def test_sensitivity_needs_calibrated_ranges():
    model = MODELS.build(ARCH)
    with pytest.raises(ValueError, match='no range; calibrate the model'):
        measured_sensitivity(model, [torch.randn(1, 3, 8, 8)], (4, ), (4, ))
