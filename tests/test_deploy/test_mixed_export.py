"""ONNX export of a per-layer bit setting: each layer's codes in its own
range, and the exported model is the fake-quantized one."""
import json

import onnx
import pytest
import torch
from mmpretrain.registry import MODELS
from onnx import numpy_helper
from test_pipeline import (BACKBONE, MEAN, STD, randomize_bn, uint8_images,
                           write_checkpoint_file)

import ssql_mm.models  # noqa: F401
from ssql_mm.deploy import (OnnxRunner, build_backbone, export_checkpoint,
                            output_parity)
from ssql_mm.evaluation import extract_features, load_pretrained
from ssql_mm.models.bit_setting import (BitSetting, LayerBits,
                                        parse_bit_setting, save_bit_setting)

# inputs: base 4/4 with 2-, 3- and 8-bit layers. integer: the all-integer
# graph, base 8/8, with 4- and 6-bit layers and a block quantizer named.
SETTINGS = {
    'inputs': BitSetting(4, 4, (
        LayerBits('layer1.*', w=2), LayerBits('layer1.0.conv2', a=8),
        LayerBits('layer3.0.conv2', w=3, a=6), LayerBits('layer4.*', w=8)),
        'inputs'),
    'integer': BitSetting(8, 8, (
        LayerBits('layer1.*', w=4), LayerBits('layer3.0.conv2', w=6, a=6),
        LayerBits('layer2.0.output_quant', a=6)), 'integer'),
}


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = MODELS.build(BACKBONE)
    randomize_bn(model)
    path = tmp_path_factory.mktemp('ckpt') / 'ssl.pth'
    return write_checkpoint_file(path, BACKBONE, model.state_dict())


def unprefixed(names):
    """Backbone names as a bits file writes them (the exported feature model
    holds the backbone under ``backbone.``)."""
    return {name[len('backbone.'):]: value for name, value in (
        names.items() if isinstance(names, dict) else zip(names, names))}


def weight_codes(path):
    return unprefixed({
        init.name[:-len('.weight_codes')]: numpy_helper.to_array(init)
        for init in onnx.load(path).graph.initializer
        if init.name.endswith('.weight_codes')})


@pytest.mark.parametrize('placement', ['inputs', 'integer'])
def test_mixed_export_codes_ranges_and_parity(tmp_path, checkpoint,
                                              placement):
    setting = SETTINGS[placement]
    bits = tmp_path / 'bits.yml'
    save_bit_setting(setting, bits)
    out, calib = str(tmp_path / 'm.onnx'), str(tmp_path / 'calib.pth')
    report, _ = export_checkpoint(
        checkpoint, out, f'mixed:{bits}', calib_images=uint8_images(32),
        calib_batches=2, batch_size=16, placement=placement,
        save_calibrated_to=calib)
    quantized = unprefixed(report.quantized)
    clipped = unprefixed(report.clipped_inputs)

    base = setting.w_bits
    assert quantized['layer1.0.conv1'][0] == (2 if base == 4 else 4)
    assert quantized['layer3.0.conv2'] == (3 if base == 4 else 6, 6)
    assert quantized['layer4.1.conv2'][0] == 8
    assert quantized['layer2.1.conv2'] == (base, base)
    codes = weight_codes(out)
    assert set(codes) == set(quantized)
    for layer, (w_bits, _) in quantized.items():
        low, high = -2**(w_bits - 1), 2**(w_bits - 1) - 1
        assert low <= codes[layer].min() and codes[layer].max() <= high
        # The layer uses its own range, not the widest one of the model.
        assert codes[layer].min() == low or codes[layer].max() == high
    assert 'layer3.0.conv2' in clipped  # 6-bit codes
    if placement == 'inputs':
        assert quantized['layer1.0.conv2'] == (2, 8)
        assert 'layer1.0.conv2' not in clipped  # 8-bit codes
    else:
        assert 'layer2.0.output_quant' in unprefixed(
            report.tensor_quantizers)

    runner = OnnxRunner(out, threads=1)
    assert runner.metadata['ssql_mm.bits'] == f'mixed:{bits}'
    assert json.loads(runner.metadata['ssql_mm.bit_setting']) == \
        setting.to_dict()
    # The calibrated reference, rebuilt from the same bits file.
    reference = build_backbone(load_pretrained(calib),
                               parse_bit_setting(f'mixed:{bits}'), calib,
                               placement)
    test = uint8_images(16, seed=1)
    ref_feats = extract_features(reference, test, MEAN, STD, 8)
    onnx_feats = runner.extract(test, MEAN, STD, batch_size=4)
    parity = output_parity(ref_feats, onnx_feats, setting.a_bits)
    if placement == 'inputs':
        assert parity.within_one_step >= 0.999, parity
    else:
        # Integer kernels requantize every block output from an int32
        # accumulator, so a value at a rounding tie can land one code away
        # (docs/deploy.md; test_qdq_export holds the integer graph to a
        # mean deviation): here 0.14 of a step.
        assert parity.mean_abs_diff <= 0.25 * parity.step, parity


def test_mixed_setting_beyond_8_bits_is_refused_naming_the_layer(
        tmp_path, checkpoint):
    bits = tmp_path / 'wide.yml'
    save_bit_setting(BitSetting(4, 4, (LayerBits('layer2.0.conv1', w=12), )),
                     bits)
    with pytest.raises(ValueError, match="mixed:wide: layer 'layer2.0.conv1':"
                       ' 12-bit weights cannot be exported'):
        export_checkpoint(checkpoint, str(tmp_path / 'm.onnx'),
                          f'mixed:{bits}', calib_images=uint8_images(8))
