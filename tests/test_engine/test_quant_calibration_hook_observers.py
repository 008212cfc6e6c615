"""QuantCalibrationHook with a chosen observer and a dataloader of its own."""
from types import SimpleNamespace

import pytest
import torch

from ssql_mm.engine.hooks import QuantCalibrationHook
from ssql_mm.quantization import (MinMaxObserver, MSEObserver,
                                  PercentileObserver, quant_layers)


def _observers(model):
    return {name: layer.input_quant.observer
            for name, layer in quant_layers(model.backbone)}


def test_hook_calibrates_with_the_chosen_observer(make_classifier,
                                                  make_loader):
    minmax_model, model = make_classifier(), make_classifier()
    QuantCalibrationHook().before_test(
        SimpleNamespace(model=minmax_model, train_dataloader=make_loader()))
    QuantCalibrationHook(observer='percentile:percentile=90').before_test(
        SimpleNamespace(model=model, train_dataloader=make_loader()))
    clipped = _observers(model)
    exact = _observers(minmax_model)
    assert all(isinstance(o, PercentileObserver) for o in clipped.values())
    assert all(isinstance(o, MinMaxObserver) for o in exact.values())
    # the 90th percentile of a layer's input lies inside its min/max range
    name = 'layer2.0.conv1'
    assert float(clipped[name].max_val) < float(exact[name].max_val)
    assert all(layer.input_quant.frozen
               for _, layer in quant_layers(model.backbone))


def test_restored_ranges_stay_and_mse_weight_ranges_apply(make_classifier,
                                                          make_loader):
    trained = make_classifier()
    QuantCalibrationHook(observer='mse').before_test(
        SimpleNamespace(model=trained, train_dataloader=make_loader()))
    model = make_classifier()
    model.load_state_dict(trained.state_dict(), strict=True)
    layers = dict(quant_layers(model.backbone))
    assert all(l.weight_quant.clip is None for l in layers.values())
    ranges = {n: float(l.input_quant.observer.max_val) for n, l in layers.items()}
    QuantCalibrationHook(observer='mse').before_test(
        SimpleNamespace(model=model, train_dataloader=make_loader(seed=1)))
    assert all(l.weight_quant.clip is not None for l in layers.values())
    assert ranges == {n: float(l.input_quant.observer.max_val)
                      for n, l in layers.items()}
    x = torch.randn(2, 3, 16, 16)
    trained.eval(), model.eval()
    with torch.no_grad():
        assert torch.equal(trained.extract_feat(x)[0], model.extract_feat(x)[0])


def test_hook_builds_its_own_dataloader_once(make_classifier, make_loader):
    calls = []

    def build_dataloader(cfg, seed=None):
        calls.append((cfg, seed))
        return make_loader()

    cfg = dict(batch_size=4, dataset=dict(type='Stub'))
    runner = SimpleNamespace(model=make_classifier(), seed=7,
                             build_dataloader=build_dataloader,
                             train_dataloader=None)
    hook = QuantCalibrationHook(num_batches=1, dataloader=cfg, observer='mse')
    hook.before_test(runner)
    assert calls == [(cfg, 7)]
    observers = _observers(runner.model)
    assert all(isinstance(o, MSEObserver) and o.has_data
               for o in observers.values())
    runner.model = make_classifier()
    hook.before_test(runner)
    assert len(calls) == 1


def test_hook_rejects_unknown_observers_at_construction():
    with pytest.raises(ValueError, match='Unknown observer'):
        QuantCalibrationHook(observer='entropy')
    with pytest.raises(ValueError, match='dataloader'):
        QuantCalibrationHook(dataloader=['train'])


def test_calib_loader_comes_from_the_config(make_classifier, make_loader):
    built = []

    def build_dataloader(cfg, seed=None):
        built.append(cfg)
        return make_loader()

    calib = dict(batch_size=4, dataset=dict(type='Stub'))
    runner = SimpleNamespace(model=make_classifier(), seed=0,
                             cfg=dict(calib_dataloader=calib),
                             build_dataloader=build_dataloader)
    QuantCalibrationHook(num_batches=1, dataloader='calib').before_test(runner)
    assert built == [calib]
    runner = SimpleNamespace(model=make_classifier(), seed=0, cfg=dict(),
                             build_dataloader=build_dataloader)
    with pytest.raises(KeyError, match='calib_dataloader'):
        QuantCalibrationHook(dataloader='calib').before_test(runner)
