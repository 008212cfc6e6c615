"""QuantResNet family: float equivalence, bit-dependence, state-dict keys."""
import pytest
import torch
from mmpretrain.models.backbones import (ResNet, ResNet_CIFAR, ResNetV1c,
                                         ResNetV1d)
from mmpretrain.registry import MODELS

from ssql_mm.models.backbones import (QuantResNet, QuantResNet_CIFAR,
                                      QuantResNetV1c, QuantResNetV1d)
from ssql_mm.quantization import QConv2d, calibrate, quant_layers

VARIANTS = [
    (QuantResNet, ResNet),
    (QuantResNet_CIFAR, ResNet_CIFAR),
    (QuantResNetV1c, ResNetV1c),
    (QuantResNetV1d, ResNetV1d),
]
IDS = [quant.__name__ for quant, _ in VARIANTS]


# Narrow networks keep the tests fast; the layer structure is ResNet-18's.
NARROW = dict(depth=18, out_indices=(3, ), stem_channels=8, base_channels=8)


def _build(cls, **kwargs):
    torch.manual_seed(0)
    model = cls(**NARROW, **kwargs)
    model.eval()
    return model


def _images(n=4):
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize('quant_cls,float_cls', VARIANTS, ids=IDS)
def test_state_dict_keys_equal_float(quant_cls, float_cls):
    quant = _build(quant_cls, w_bits=4, a_bits=4)
    ref = _build(float_cls)
    assert list(quant.state_dict()) == list(ref.state_dict())
    # Both directions, strict.
    ref.load_state_dict(quant.state_dict(), strict=True)
    quant.load_state_dict(ref.state_dict(), strict=True)


@pytest.mark.parametrize('quant_cls,float_cls,bits',
                         [v + (0, ) for v in VARIANTS] +
                         [VARIANTS[1] + (None, )],
                         ids=IDS + ['QuantResNet_CIFAR-None'])
def test_zero_bits_is_the_float_resnet(quant_cls, float_cls, bits):
    ref = _build(float_cls)
    torch.manual_seed(123)  # different init, then copy the reference weights
    quant = quant_cls(**NARROW, w_bits=bits, a_bits=bits)
    quant.load_state_dict(ref.state_dict())
    quant.eval()
    assert all(wb is None and ab is None
               for wb, ab in quant.layer_bits.values())
    x = _images()
    with torch.no_grad():
        assert torch.equal(quant(x)[0], ref(x)[0])
    # Training mode (BatchNorm on batch statistics) too.
    quant.train(), ref.train()
    assert torch.equal(quant(x)[0], ref(x)[0])


@pytest.mark.parametrize('quant_cls,float_cls', VARIANTS, ids=IDS)
def test_every_conv_is_quantized_with_paper_assignment(quant_cls, float_cls):
    model = _build(quant_cls, w_bits=4, a_bits=5)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(isinstance(m, QConv2d) for m in convs)
    bits = model.layer_bits
    stem = [name for name in bits if not name.startswith('layer')]
    # First stem conv: 8-bit weights, the image input float.
    assert bits[stem[0]] == (8, None)
    for name in stem[1:]:
        assert bits[name] == (8, 8)
    assert bits['layer1.0.conv1'] == (4, 8)
    assert bits['layer2.0.conv1'] == (4, 5)
    assert bits['layer4.1.conv2'] == (4, 5)


def test_outputs_change_with_bits_and_error_shrinks_with_more_bits():
    ref = _build(ResNet_CIFAR)
    x = _images(8)
    with torch.no_grad():
        expected = ref(x)[0]
    errors = {}
    outputs = {}
    for bits in (8, 6, 4, 2):
        model = _build(QuantResNet_CIFAR, w_bits=bits, a_bits=max(bits, 2))
        model.load_state_dict(ref.state_dict())
        calibrate(model, [x])
        with torch.no_grad():
            outputs[bits] = model(x)[0]
        errors[bits] = (outputs[bits] - expected).abs().mean().item()
    for a, b in ((8, 6), (6, 4), (4, 2)):
        assert not torch.equal(outputs[a], outputs[b])
    assert 0 < errors[8] < errors[6] < errors[4] < errors[2]
    # 8 bits stays close to float.
    assert errors[8] < 0.05 * expected.abs().mean().item()


def test_quantized_forward_needs_calibration():
    model = _build(QuantResNet_CIFAR, w_bits=4, a_bits=4)
    with pytest.raises(RuntimeError, match='calibrate'):
        model(_images(2))


def test_weight_only_quantization_needs_no_calibration():
    ref = _build(ResNet_CIFAR)
    model = _build(QuantResNet_CIFAR, w_bits=4, a_bits=0, overrides=[])
    model.load_state_dict(ref.state_dict())
    x = _images(2)
    with torch.no_grad():
        out, expected = model(x)[0], ref(x)[0]
    assert not torch.equal(out, expected)
    assert torch.allclose(out, expected, atol=out.abs().max().item())


@pytest.mark.parametrize('bits', [1, 17, -1])
def test_invalid_bits_are_rejected(bits):
    with pytest.raises(ValueError, match='not supported'):
        QuantResNet_CIFAR(**NARROW, w_bits=bits, a_bits=4)


def test_built_from_config_with_frozen_stages():
    model = MODELS.build(
        dict(type='QuantResNet_CIFAR', w_bits=4, a_bits=4, frozen_stages=4,
             norm_eval=True, **NARROW))
    assert isinstance(model, QuantResNet_CIFAR)
    assert not any(p.requires_grad for p in model.parameters())
    model.train()
    assert all(not m.training for m in model.modules()
               if isinstance(m, torch.nn.BatchNorm2d))
    assert len(dict(quant_layers(model))) == 20  # 17 convs + 3 downsamples
