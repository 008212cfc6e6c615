"""Quantized layers, model conversion, overrides, modes and range recording."""
import pytest
import torch
from mmpretrain.models import ResNet_CIFAR
from torch import nn

from ssql_mm.quantization import (QConv2d, QLinear, apply_overrides,
                                  calibrate, fake_quantize_activation,
                                  fake_quantize_weight, get_bits, observing,
                                  paper_backbone_overrides, quant_layers,
                                  quantize_model, quantizing, reset_ranges,
                                  set_bits)


def small_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(8, 4))


def test_layers_keep_float_keys_params_and_output():
    conv, fc = nn.Conv2d(3, 5, 3, bias=True), nn.Linear(4, 2)
    qconv, qfc = QConv2d.from_float(conv, 4, 4), QLinear.from_float(fc, 8, 8)
    assert qconv.weight is conv.weight and qconv.bias is conv.bias
    assert qfc.weight is fc.weight
    assert list(qconv.state_dict()) == list(conv.state_dict())
    assert list(qfc.state_dict()) == list(fc.state_dict())
    assert isinstance(qconv, nn.Conv2d) and isinstance(qfc, nn.Linear)
    x = torch.randn(2, 3, 7, 7)
    # float mode: bit-identical to the float layer
    assert torch.equal(qconv(x), conv(x))
    set_bits(qconv, None, None)
    with quantizing(qconv):
        assert torch.equal(qconv(x), conv(x))
    back = qconv.to_float()
    assert type(back) is nn.Conv2d and back.weight is conv.weight
    # constructor path (conv_cfg=dict(type=QConv2d))
    built = QConv2d(3, 5, 3, w_bits=2, a_bits=4)
    assert built.weight_quant.bits == 2 and built.input_quant.bits == 4


def test_quantized_forward_equals_formulas():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3)
    q = QConv2d.from_float(conv, 3, 5)
    x1, x2 = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8) * 3
    with observing(q):
        q(x1), q(x2)
    lo = torch.minimum(x1.min(), x2.min())
    hi = torch.maximum(x1.max(), x2.max())
    assert q.input_quant.observer.min_val == lo
    assert q.input_quant.observer.max_val == hi
    with quantizing(q):
        y1, y2 = q(x1), q(x2)
    wq = fake_quantize_weight(conv.weight, 3)
    for x, y in ((x1, y1), (x2, y2)):
        torch.testing.assert_close(
            y, nn.functional.conv2d(fake_quantize_activation(x, lo, hi, 5), wq, conv.bias))
    # both views' gradients reach the single weight
    (y1.sum() + y2.sum()).backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    # the weight changes after an update: the quantized copy follows it
    with torch.no_grad():
        conv.weight.mul_(2)
    with quantizing(q):
        torch.testing.assert_close(
            q(x1), nn.functional.conv2d(
                fake_quantize_activation(x1, lo, hi, 5),
                fake_quantize_weight(conv.weight, 3), conv.bias))


def test_quantize_model_overrides_and_set_bits():
    net = small_net()
    float_keys = list(net.state_dict())
    report = quantize_model(net, 4, 6, overrides=[
        dict(name='0', w_bits=8, a_bits=None), dict(name='7', a_bits=0)])
    assert report.converted == ['0', '3', '7']
    assert list(net.state_dict()) == float_keys
    assert get_bits(net) == {'0': (8, None), '3': (4, 6), '7': (4, None)}
    set_bits(net, 2, 5)
    assert get_bits(net) == {'0': (8, None), '3': (2, 5), '7': (2, None)}
    with pytest.raises(ValueError, match="'layer9' matches no quantized layer"):
        apply_overrides(net, [dict(name='layer9')])
    with pytest.raises(KeyError, match='Unknown key'):
        apply_overrides(net, [dict(name='0', bits=4)])
    with pytest.raises(ValueError, match='w_bits of override'):
        apply_overrides(net, [dict(name='0', w_bits=1)])
    with pytest.raises(ValueError, match='use an integer in'):
        quantize_model(small_net(), 2, 33)


def test_modes_restore_on_exception_and_reset():
    net = small_net()
    quantize_model(net, 4, 4)
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(ZeroDivisionError):
        with observing(net):
            net(x)
            1 / 0
    assert all(q.mode == 'float' for _, l in quant_layers(net)
               for q in (l.weight_quant, l.input_quant))
    assert net[3].input_quant.has_range
    reset_ranges(net)
    assert not net[3].input_quant.has_range


def test_observed_ranges_are_those_of_tensors_reaching_each_layer():
    net = small_net()
    quantize_model(net, 4, 4)
    seen = {}
    for name, layer in quant_layers(net):
        layer.register_forward_pre_hook(
            lambda m, args, name=name: seen.setdefault(name, []).append(args[0].detach()))
    views = [torch.randn(3, 3, 8, 8), torch.randn(3, 3, 8, 8)]
    with observing(net):
        for v in views:
            net(v)
    for name, layer in quant_layers(net):
        inputs = torch.cat([t.flatten() for t in seen[name]])
        assert layer.input_quant.observer.min_val == inputs.min()
        assert layer.input_quant.observer.max_val == inputs.max()


def test_paper_overrides_on_cifar_resnet():
    backbone = ResNet_CIFAR(depth=18)
    quantize_model(backbone, 4, 4)
    apply_overrides(backbone, paper_backbone_overrides(backbone))
    bits = get_bits(backbone)
    assert bits['conv1'] == (8, None)             # image input never quantized
    assert bits['layer1.0.conv1'] == (4, 8)       # reads the 8-bit stem output
    assert bits['layer1.0.conv2'] == (4, 4)
    assert bits['layer2.0.downsample.0'] == (4, 4)
    set_bits(backbone, 2, 5)
    assert get_bits(backbone)['conv1'] == (8, None)
    assert get_bits(backbone)['layer1.0.conv1'] == (2, 8)
    assert get_bits(backbone)['layer4.1.conv2'] == (2, 5)


def test_calibrated_ranges_survive_state_dict():
    net = small_net()
    quantize_model(net, 4, 4)
    batches = [torch.randn(2, 3, 8, 8) for _ in range(3)]
    assert calibrate(net, batches) == 3
    sd = net.state_dict()
    assert '3.input_quant.min_val' in sd
    restored = small_net()
    quantize_model(restored, 4, 4)
    restored.load_state_dict(sd, strict=True)
    assert restored[3].input_quant.frozen
    assert restored[3].input_quant.observer.max_val == net[3].input_quant.observer.max_val
    # a plain float checkpoint still loads strictly into the quantized net
    restored.load_state_dict(small_net().state_dict(), strict=True)
    with pytest.raises(ValueError, match='no batch'):
        calibrate(net, [])
