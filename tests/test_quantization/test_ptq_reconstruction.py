"""AdaRound, BRECQ and QDrop on toy models: what they promise, checked on the
model they leave behind."""
import copy

import pytest
import torch
from mmpretrain.models.backbones.resnet import BasicBlock
import torch.nn.functional as F
from torch import nn

from ssql_mm.quantization import (ActivationFakeQuantize, QConv2d, calibrate,
                                  fake_quantize_weight, mse_weight_clip,
                                  quant_layers, quantize_model, quantizing,
                                  weight_qparams)
from ssql_mm.quantization.ptq import (AdaRound, block_units, build_ptq,
                                     ptq_config)


class ToyNet(nn.Module):
    """A stem conv, one residual block and a linear head."""

    def __init__(self, block=BasicBlock):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block = block(8, 8)
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        x = self.block(torch.relu(self.stem(x)))
        return self.head(x.mean((2, 3)))


class OutputQuantBlock(BasicBlock):
    """A block holding a block-level activation quantizer on its output."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.output_quant = ActivationFakeQuantize()

    def forward(self, x):
        return self.output_quant(super().forward(x))


def _batches(seed=0, n=4):
    """Smooth images: with white-noise inputs nearest rounding is already
    optimal (the loss's Hessian is diagonal), with correlated ones not."""
    gen = torch.Generator().manual_seed(seed)
    return [
        F.interpolate(torch.randn(16, 3, 3, 3, generator=gen), size=8,
                      mode='bilinear', align_corners=True) for _ in range(n)
    ]


def _model(w_bits, a_bits, seed=0, block=BasicBlock):
    torch.manual_seed(seed)
    model = ToyNet(block)
    quantize_model(model, w_bits, a_bits)
    for _, layer in quant_layers(model):
        layer.weight_quant.set_mode('quantize')
        layer.input_quant.set_mode('quantize')
    for module in model.modules():
        if isinstance(module, ActivationFakeQuantize):
            module.bits = a_bits
            module.set_mode('quantize')
    return model.eval()


def _error(model, reference, batches):
    """Mean squared output error of ``model`` (quantized) against
    ``reference`` run in float."""
    with torch.no_grad():
        errs = []
        for x in batches:
            with quantizing(model):
                out = model(x)
            ref = reference(x)
            errs.append((out - ref).pow(2).mean())
    return float(torch.stack(errs).mean())


def _float_copy(model):
    ref = copy.deepcopy(model)
    for module in ref.modules():
        if hasattr(module, 'set_mode'):
            module.set_mode('float')
    return ref


def _codes(layer, weight):
    scale, _ = weight_qparams(weight, layer.weight_quant.bits, 0,
                              layer.weight_quant.max_abs)
    return weight * (1. / scale.view(-1, *[1] * (weight.dim() - 1))), scale


FAST = dict(iters=200, images=64, batch_size=16)
# Enough for equality and state checks, not for quality.
SHORT = dict(iters=30, images=32, batch_size=16)


def _run(spec, w_bits=3, a_bits=4, block=BasicBlock, settings=FAST):
    model = _model(w_bits, a_bits, block=block)
    reference = _float_copy(model)
    nearest = copy.deepcopy(model)
    calibrate(nearest, _batches())
    calibrate(model, _batches(), ptq=dict(settings, **spec))
    return model, nearest, reference


@pytest.mark.parametrize('method', ['adaround', 'brecq', 'qdrop'])
def test_learned_codes_are_floor_or_floor_plus_one_and_survive_nearest_rounding(
        method):
    model, nearest, reference = _run(dict(type=method), settings=SHORT)
    changed = 0
    for (name, layer), (_, before) in zip(quant_layers(model),
                                         quant_layers(reference)):
        assert layer.weight_quant.frozen, name
        ratio, _ = _codes(layer, before.weight.detach())
        codes, _ = _codes(layer, layer.weight.detach())
        assert torch.allclose(codes, codes.round(), atol=1e-4), name
        low, high = -2**2, 2**2 - 1
        floor = ratio.floor()
        assert torch.all((codes.round() == floor.clamp(low, high))
                         | (codes.round() == (floor + 1).clamp(low, high)))
        changed += int((codes.round() != ratio.round()).sum())
        # the quantizer reproduces the baked weight exactly
        with quantizing(layer):
            assert torch.equal(layer.weight_quant(layer.weight), layer.weight)
    assert changed > 0  # the rounding was learned, not just nearest


@pytest.mark.parametrize('method', ['adaround', 'brecq'])
def test_reconstruction_error_is_below_nearest_rounding(method):
    model, nearest, reference = _run(dict(type=method), w_bits=3, a_bits=4)
    held_out = _batches(seed=1, n=2)
    assert _error(model, reference, held_out) < 0.9 * _error(
        nearest, reference, held_out)


def test_a_single_layer_improves_on_nearest_rounding():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3))
    quantize_model(model, 2, None)
    model[0].weight_quant.set_mode('quantize')
    reference = _float_copy(model)
    nearest = copy.deepcopy(model)
    calibrate(nearest, _batches())
    calibrate(model, _batches(), ptq=dict(type='adaround', **FAST))
    assert _error(model, reference, _batches()) < 0.9 * _error(
        nearest, reference, _batches())


@pytest.mark.parametrize('method', ['adaround', 'brecq'])
def test_at_8_bits_codes_stay_within_one_step_of_nearest(method):
    model, nearest, reference = _run(dict(type=method), w_bits=8, a_bits=8)
    for (_, layer), (_, before) in zip(quant_layers(model),
                                      quant_layers(reference)):
        ratio, scale = _codes(layer, before.weight.detach())
        codes, _ = _codes(layer, layer.weight.detach())
        assert (codes.round() - ratio.round()).abs().max() <= 1
        step = scale.view(-1, 1, 1, 1) if layer.weight.dim() == 4 else \
            scale.view(-1, 1)
        assert torch.all((layer.weight - before.weight).abs() <= 1.5 * step)
    assert _error(model, reference, _batches()) <= 1.05 * _error(
        nearest, reference, _batches())


def test_qdrop_without_drops_is_brecq_and_with_drops_is_not():
    brecq, _, _ = _run(dict(type='brecq'), settings=SHORT)
    qdrop0, _, _ = _run(dict(type='qdrop', drop_prob=0.), settings=SHORT)
    qdrop, _, _ = _run(dict(type='qdrop', drop_prob=0.5), settings=SHORT)
    a, b, c = brecq.state_dict(), qdrop0.state_dict(), qdrop.state_dict()
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_deterministic_under_a_seed():
    first, _, _ = _run(dict(type='qdrop', seed=3), settings=SHORT)
    again, _, _ = _run(dict(type='qdrop', seed=3), settings=SHORT)
    other, _, _ = _run(dict(type='qdrop', seed=4), settings=SHORT)
    a, b, c = first.state_dict(), again.state_dict(), other.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_bake_save_load_round_trip():
    model, _, _ = _run(dict(type='brecq'), block=OutputQuantBlock,
                       settings=SHORT)
    state = model.state_dict()
    assert 'block.conv1.weight_quant.max_abs' in state
    assert 'block.output_quant.min_val' in state
    fresh = _model(3, 4, seed=7, block=OutputQuantBlock)
    fresh.load_state_dict(state, strict=True)
    for x in _batches(seed=2, n=2):
        with torch.no_grad():
            assert torch.equal(model(x), fresh(x))


def test_brecq_learns_block_level_step_sizes_and_adaround_keeps_them():
    calibrated = _model(3, 4, block=OutputQuantBlock)
    calibrate(calibrated, _batches())
    brecq, _, _ = _run(dict(type='brecq'), block=OutputQuantBlock,
                       settings=SHORT)
    ada, _, _ = _run(dict(type='adaround'), block=OutputQuantBlock,
                     settings=SHORT)

    def rng(model):
        q = model.block.output_quant
        return float(q.observer.min_val), float(q.observer.max_val)

    assert brecq.block.output_quant.frozen
    assert rng(brecq) != rng(calibrated)
    assert rng(ada) == rng(calibrated)


def test_units_are_blocks_and_the_layers_outside_them():
    model = _model(4, 4)
    assert [name for name, _ in block_units(model)] == ['block', 'stem', 'head']
    assert [name for name, _ in AdaRound().units(model)] == [
        'stem', 'block.conv1', 'block.conv2', 'head']


def test_mse_calibration_is_the_starting_point():
    model = _model(3, 4)
    weights = {n: l.weight.detach().clone() for n, l in quant_layers(model)}
    calibrate(model, _batches(), observer='mse',
              ptq=dict(type='adaround', iters=2, images=16))
    for name, layer in quant_layers(model):
        assert torch.equal(layer.weight_quant.max_abs,
                           mse_weight_clip(weights[name], 3, 0))


@pytest.mark.parametrize('spec, message', [
    ('sgd', "Unknown PTQ method 'sgd'; use one of: adaround, brecq, qdrop"),
    ('brecq:iters', 'KEY=VALUE'),
    ('adaround:drop_prob=0.5', "no argument ['drop_prob']"),
    ('brecq:iters=0', 'iters must be a positive int'),
    ('brecq:iters=2.5', 'iters must be a positive int'),
    ('qdrop:drop_prob=1.5', 'drop_prob must be a number in [0, 1]'),
    ('brecq:act_lr=-1', 'act_lr must be a positive float'),
    ('adaround:beta_start=2,beta_end=20', 'must not exceed beta_start'),
    ('adaround:warmup=1', 'warmup must be a number in [0, 1)'),
    (5, "Choose the PTQ method by name"),
])
def test_bad_arguments_are_one_line_errors(spec, message):
    with pytest.raises((ValueError, TypeError)) as err:
        build_ptq(spec)
    assert message in str(err.value)
    assert '\n' not in str(err.value)


def test_spec_forms_agree():
    assert ptq_config('brecq:iters=500,act_lr=1e-4') == dict(
        type='brecq', iters=500, act_lr=1e-4)
    assert build_ptq('qdrop:drop_prob=0.25') == build_ptq(
        dict(type='qdrop', drop_prob=0.25))


def test_bad_models_and_data_are_one_line_errors():
    model = _model(3, 4)
    with pytest.raises(RuntimeError, match='run ssql_mm.quantization.calibrate'
                       ) as err:
        build_ptq('brecq')(model, _batches())
    calibrate(model, _batches())
    with pytest.raises(ValueError, match='received no batch') as err2:
        build_ptq('brecq')(model, [])
    with pytest.raises(ValueError, match='found no quantized layer') as err3:
        build_ptq('adaround')(nn.Sequential(nn.Conv2d(3, 3, 1)), _batches())
    for e in (err, err2, err3):
        assert '\n' not in str(e.value)
    # a bad method is refused before calibration changes anything
    fresh = _model(3, 4)
    with pytest.raises(ValueError):
        calibrate(fresh, _batches(), ptq='adaround:iters=-1')
    assert not fresh.stem.input_quant.frozen


def test_frozen_weight_clip_is_saved_only_when_frozen_and_wins_over_clip():
    torch.manual_seed(0)
    conv = QConv2d(3, 4, 3, w_bits=4)
    conv.weight_quant.set_mode('quantize')
    assert 'weight_quant.max_abs' not in conv.state_dict()
    conv.weight_quant.set_clip(lambda w, bits, axis: torch.full((4, ), 0.01))
    frozen = torch.full((4, ), 0.5)
    conv.weight_quant.freeze_max_abs(frozen)
    expected = fake_quantize_weight(conv.weight, 4, 0, frozen)
    assert torch.equal(conv.weight_quant(conv.weight), expected)
    assert torch.equal(conv.state_dict()['weight_quant.max_abs'], frozen)
    fresh = QConv2d(3, 4, 3, w_bits=4)
    fresh.load_state_dict(conv.state_dict(), strict=True)
    assert fresh.weight_quant.frozen
    fresh.weight_quant.freeze_max_abs(None)
    assert 'weight_quant.max_abs' not in fresh.state_dict()


@pytest.mark.parametrize('placement', ['inputs', 'paper', 'integer'])
def test_brecq_on_a_quantized_resnet_under_every_placement(placement):
    from ssql_mm.models.backbones import QuantResNet_CIFAR

    def build(seed):
        torch.manual_seed(seed)
        net = QuantResNet_CIFAR(depth=18, stem_channels=4, base_channels=4,
                                w_bits=4, a_bits=4, placement=placement,
                                zero_init_residual=False)
        net.eval()  # mmpretrain's ResNet.train() does not return the model
        return net

    model = build(0)
    units = [name for name, _ in block_units(model)]
    assert units == [f'layer{s}.{b}' for s in range(1, 5)
                     for b in range(2)] + ['conv1']
    images = [F.interpolate(x, size=16) for x in _batches()]
    calibrate(model, images, ptq=dict(type='brecq', **SHORT))
    steps = [q for q in model.modules() if isinstance(q, ActivationFakeQuantize)
             and q.bits is not None]
    assert steps and all(q.frozen for q in steps)
    fresh = build(1)
    fresh.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        assert torch.equal(model(images[0])[0], fresh(images[0])[0])
