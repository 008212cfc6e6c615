"""Quantized backbone classes: real signatures, registry, float -> twin map."""
import inspect

import pytest
from mmdet.registry import MODELS as DET_MODELS
from mmpretrain.models.backbones import (ResNet, ResNet_CIFAR, ResNetV1c,
                                         ResNetV1d, ResNeXt)
from mmpretrain.registry import MODELS
from torch import nn

from ssql_mm.models.backbones import (QUANT_TWINS, QuantBackboneMixin,
                                      QuantResNet, QuantResNet_CIFAR,
                                      QuantResNetV1c, QuantResNetV1d,
                                      quant_twin)
from ssql_mm.quantization import quant_layers

PAIRS = [(ResNet, QuantResNet), (ResNet_CIFAR, QuantResNet_CIFAR),
         (ResNetV1c, QuantResNetV1c), (ResNetV1d, QuantResNetV1d)]
IDS = [quant.__name__ for _, quant in PAIRS]


@pytest.mark.parametrize('float_cls,quant_cls', PAIRS, ids=IDS)
def test_class_is_defined_in_its_module_with_a_real_signature(
        float_cls, quant_cls):
    assert quant_cls.__module__ == 'ssql_mm.models.backbones.quant_resnet'
    assert quant_cls.__qualname__ == quant_cls.__name__
    assert quant_cls.__mro__[1:3] == (QuantBackboneMixin, float_cls)
    params = inspect.signature(quant_cls).parameters
    for name in ('w_bits', 'a_bits', 'overrides'):
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, name
        assert params[name].default is None, name
    doc = inspect.getdoc(quant_cls)
    assert float_cls.__name__ in doc and 'w_bits' in doc
    # Defined in the source file, so IDEs and docs can point at it.
    assert f'class {quant_cls.__name__}(' in inspect.getsource(quant_cls)


@pytest.mark.parametrize('float_cls,quant_cls', PAIRS, ids=IDS)
def test_registered_in_mmpretrain_and_reachable_from_mmdet(
        float_cls, quant_cls):
    assert MODELS.get(quant_cls.__name__) is quant_cls
    assert DET_MODELS.get(f'mmpretrain.{quant_cls.__name__}') is quant_cls


@pytest.mark.parametrize('float_cls,quant_cls', PAIRS, ids=IDS)
def test_quant_twin_maps_float_classes_names_and_twins(float_cls, quant_cls):
    assert QUANT_TWINS[float_cls] is quant_cls
    assert quant_twin(float_cls) is quant_cls
    assert quant_twin(float_cls.__name__) is quant_cls
    assert quant_twin(f'mmpretrain.{float_cls.__name__}') is quant_cls
    assert quant_twin(quant_cls) is quant_cls
    assert quant_twin(f'mmpretrain.{quant_cls.__name__}') is quant_cls


@pytest.mark.parametrize('backbone', [
    'ResNeXt', ResNeXt, 'mmdet.ResNet', 'NoSuchBackbone', 'SwinTransformer'
])
def test_quant_twin_rejects_other_backbones_naming_the_supported_ones(
        backbone):
    with pytest.raises(ValueError, match='no quantized twin.*ResNetV1c'):
        quant_twin(backbone)


def test_twin_built_from_a_float_config_quantizes_every_conv():
    cfg = dict(type='ResNetV1c', depth=18, stem_channels=8, base_channels=8)
    model = MODELS.build(dict(cfg, type=quant_twin(cfg['type']), w_bits=4,
                              a_bits=4))
    assert isinstance(model, QuantResNetV1c)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    # Deep stem (3) + 8 basic blocks (16) + 3 downsample convs.
    assert len(convs) == len(list(quant_layers(model))) == 22
    assert model.layer_bits['layer3.1.conv2'] == (4, 4)
