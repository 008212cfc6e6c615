"""Calibration: recorded ranges are the data's min/max, frozen, and survive
a checkpoint."""
from types import SimpleNamespace

import pytest
import torch
from mmpretrain.models import ImageClassifier

from ssql_mm.engine.hooks import QuantCalibrationHook
from ssql_mm.models.backbones import QuantResNet_CIFAR
from ssql_mm.quantization import QuantLayerMixin, calibrate, quant_layers


def _tiny(w_bits=4, a_bits=4):
    torch.manual_seed(0)
    return QuantResNet_CIFAR(depth=18, stem_channels=4, base_channels=4,
                             w_bits=w_bits, a_bits=a_bits)


def _record_input_ranges(model):
    """Forward pre-hooks keeping the running min/max of each layer's input."""
    seen, handles = {}, []
    for name, layer in quant_layers(model):
        def hook(module, args, name=name):
            low, high = args[0].min(), args[0].max()
            if name in seen:
                low = torch.minimum(low, seen[name][0])
                high = torch.maximum(high, seen[name][1])
            seen[name] = (low, high)
        handles.append(layer.register_forward_pre_hook(hook))
    return seen, handles


def _ranges(model):
    return {
        name: (layer.input_quant.observer.min_val.clone(),
               layer.input_quant.observer.max_val.clone())
        for name, layer in quant_layers(model)
    }


def test_calibrated_ranges_are_min_max_of_the_data_at_each_layer():
    model = _tiny()
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randn(4, 3, 16, 16, generator=gen) * (i + 1)
               for i in range(3)]
    seen, handles = _record_input_ranges(model)
    assert calibrate(model, batches, num_batches=2) == 2
    for h in handles:
        h.remove()
    ranges = _ranges(model)
    assert set(ranges) == set(seen) and len(ranges) == 20
    for name, (low, high) in ranges.items():
        assert torch.equal(low, seen[name][0]), name
        assert torch.equal(high, seen[name][1]), name
    assert all(layer.input_quant.frozen for _, layer in quant_layers(model))
    # Only the first two batches count: the third (widest) is not seen.
    assert ranges['conv1'][1] < batches[2].max()
    # The image is the stem's input, so its range is the data's range.
    assert torch.equal(ranges['conv1'][0], torch.cat(batches[:2]).min())


def test_calibration_is_float_and_keeps_bn_statistics():
    model = _tiny()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(4, 3, 16, 16)
    seen, handles = _record_input_ranges(model)
    calibrate(model, [x])
    for h in handles:
        h.remove()
    assert model.training  # restored
    for key, value in model.state_dict().items():
        if key in before:
            assert torch.equal(value, before[key]), key
    # A float pass: the next layer saw the unquantized output of the stem.
    model.eval()
    float_model = _tiny(0, 0)
    float_model.eval()
    with torch.no_grad():
        stem_out = float_model.relu(float_model.norm1(float_model.conv1(x)))
    assert torch.equal(seen['layer1.0.conv1'][1], stem_out.max())


def test_hook_calibrates_on_the_chosen_loader_and_skips_when_frozen(
        make_classifier, make_loader):
    model = make_classifier()
    # validation images span a wider range than the training ones
    runner = SimpleNamespace(
        model=model,
        train_dataloader=make_loader(seed=0, batches=3, images=2, scale=0.5),
        val_dataloader=make_loader(seed=1, batches=1, images=2))
    seen, handles = _record_input_ranges(model)
    QuantCalibrationHook(num_batches=2).before_train(runner)
    ranges = _ranges(model)
    for name, (low, high) in ranges.items():
        assert torch.equal(low, seen[name][0]) and torch.equal(
            high, seen[name][1]), name
    seen.clear()
    # Ranges are frozen now: validation does not recalibrate.
    QuantCalibrationHook(dataloader='val').before_val(runner)
    for h in handles:
        h.remove()
    assert not seen
    assert all(torch.equal(_ranges(model)[k][1], v[1])
               for k, v in ranges.items())


@pytest.fixture
def make_runner(make_loader):
    """Factory: a runner whose train and test loader is one batch of two
    images, values up to ``255 * scale``."""

    def make(model, scale=1.0):
        loader = make_loader(seed=3, batches=1, images=2, scale=scale)
        return SimpleNamespace(model=model, train_dataloader=loader,
                               test_dataloader=loader)

    return make


def test_hook_measures_nothing_for_a_float_model(make_classifier,
                                                 make_runner):
    model = make_classifier(0, 0)
    seen, handles = _record_input_ranges(model)
    runner = make_runner(model)
    QuantCalibrationHook().before_train(runner)
    QuantCalibrationHook(dataloader='test').before_test(runner)
    for h in handles:
        h.remove()
    assert not seen
    layers = dict(quant_layers(model.backbone))
    assert layers and not any(l.input_quant.has_range or l.input_quant.frozen
                              for l in layers.values())
    # Hence a float checkpoint carries no range.
    assert not [k for k in model.state_dict() if k.endswith('min_val')]


def test_hook_measures_a_float_checkpoint_tested_at_bits(make_classifier,
                                                         make_runner):
    float_state = make_classifier(0, 0).state_dict()
    model = make_classifier(4, 4)
    model.load_state_dict(float_state, strict=True)
    seen, handles = _record_input_ranges(model)
    QuantCalibrationHook(dataloader='test').before_test(make_runner(model))
    for h in handles:
        h.remove()
    ranges = _ranges(model)
    assert len(ranges) == 20
    for name, (low, high) in ranges.items():
        assert torch.equal(low, seen[name][0]) and torch.equal(
            high, seen[name][1]), name
    assert all(l.input_quant.frozen for _, l in quant_layers(model))


def test_hook_keeps_ranges_restored_from_a_quantized_checkpoint(
        make_classifier, make_runner):
    trained = make_classifier(4, 4)
    QuantCalibrationHook(dataloader='test').before_test(make_runner(trained))
    model = make_classifier(4, 4)
    model.load_state_dict(trained.state_dict(), strict=True)
    seen, handles = _record_input_ranges(model)
    # Other images: a recalibration would record other ranges.
    QuantCalibrationHook(dataloader='test').before_test(
        make_runner(model, 0.5))
    for h in handles:
        h.remove()
    assert not seen
    for name, (low, high) in _ranges(trained).items():
        assert torch.equal(_ranges(model)[name][0], low), name
        assert torch.equal(_ranges(model)[name][1], high), name


def test_hook_rejects_bad_arguments_and_float_models():
    with pytest.raises(ValueError, match='num_batches'):
        QuantCalibrationHook(num_batches=0)
    with pytest.raises(ValueError, match='dataloader'):
        QuantCalibrationHook(dataloader='calibration')
    float_model = ImageClassifier(
        backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=4,
                      base_channels=4),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=3, in_channels=32))
    runner = SimpleNamespace(model=float_model, train_dataloader=None)
    with pytest.raises(RuntimeError, match='no quantized layer'):
        QuantCalibrationHook().before_train(runner)


def test_frozen_ranges_travel_in_the_state_dict():
    model = _tiny()
    calibrate(model, [torch.randn(2, 3, 16, 16)])
    state = model.state_dict()
    keys = [k for k in state if k.endswith('input_quant.min_val')]
    assert len(keys) == 20
    restored = _tiny()
    restored.load_state_dict(state, strict=True)
    assert all(l.input_quant.frozen for _, l in quant_layers(restored))
    for name, (low, high) in _ranges(model).items():
        got = _ranges(restored)[name]
        assert torch.equal(got[0], low) and torch.equal(got[1], high)
    x = torch.randn(2, 3, 16, 16)
    model.eval(), restored.eval()
    with torch.no_grad():
        assert torch.equal(model(x)[0], restored(x)[0])
    assert all(isinstance(l, QuantLayerMixin) for _, l in quant_layers(model))
