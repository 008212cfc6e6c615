"""The all-integer graph is its PyTorch reference, code for code.

Every activation quantizer of the ``integer`` placement is read in both
models as integer codes: in PyTorch ``round(y / s) + z`` of the fake-quantized
tensor, in onnxruntime the output of the matching ``QuantizeLinear`` (or of
its ``Clip``), with graph optimizations off (the QDQ graph's own float
semantics) and on (fused ``QLinearConv`` / ``QLinearAdd`` kernels). Before
the export moved the model's biases onto their int32 grid (``snap_biases``),
codes flipped from the first block on wherever a value lay within the bias
rounding (up to ~1e-3 of a step at 8w8a) of a rounding tie.
"""
import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from test_pipeline import ssl_checkpoint  # noqa: F401 (fixture)
from test_pipeline import normalized, uint8_images
from test_qdq_export import tiny_resnet

from ssql_mm.deploy import (OnnxRunner, activation_encoding, build_backbone,
                            export_checkpoint, export_qdq_model, snap_biases)
from ssql_mm.evaluation import load_pretrained, parse_bit_setting
from ssql_mm.models.bit_setting import (BitSetting, LayerBits,
                                        save_bit_setting)
from ssql_mm.quantization import ActivationFakeQuantize, quant_layers

SETTINGS = ['8/8', '4/4', '2/4', 'mixed']
BLOCKS = [f'layer{stage}.{index}' for stage in range(1, 5)
          for index in range(2)]
# What tools/mixed_precision.py writes: base 8/8, 2-3-bit weights, 4-bit
# inner conv inputs and block outputs, 8-bit operands of every addition
# (branch and shortcut), the last block output 8-bit.
MIXED = BitSetting(8, 8, tuple(
    [LayerBits(f'{block}.conv1', w=3) for block in BLOCKS] +
    [LayerBits(f'{block}.conv2', w=2, a=4) for block in BLOCKS] +
    [LayerBits(f'{block}.output_quant', a=4) for block in BLOCKS[:-1]]),
    'integer')


def codes_of(quantizer, name, x):
    """``round(y / s) + z`` of a fake-quantized tensor ``y``."""
    enc = activation_encoding(quantizer, name)
    return (torch.round(x.double() / enc.scale).long() +
            enc.zero_point).numpy()


def tie_distance(quantizer, name, x):
    """How far (in steps) each value ``x`` is from a rounding tie of the
    quantizer: 0 at ``k + 0.5``, 0.5 on a code."""
    enc = activation_encoding(quantizer, name)
    steps = x.double() / enc.scale
    return (steps - torch.floor(steps) - 0.5).abs().numpy()


def dequantize(quantizer, name, codes):
    enc = activation_encoding(quantizer, name)
    return torch.from_numpy(
        ((codes - enc.zero_point) * np.float32(enc.scale)).astype(np.float32))


def onnx_codes(path, x, optimization, tmp_path):
    """Every activation ``QuantizeLinear`` (after its ``Clip``) of the graph
    as an extra output: quantizer name -> int64 codes. A layer's input
    quantizer is written under the layer's name."""
    model = onnx.load(path)
    values = {}
    for node in model.graph.node:
        if node.op_type in ('QuantizeLinear', 'Clip') and (
                '/input/' in node.name):
            values[node.name.split('/input/')[0]] = node.output[0]
    for value in values.values():
        model.graph.output.append(
            helper.make_tensor_value_info(value, TensorProto.UINT8, None))
    probe = str(tmp_path / f'probe_{optimization}.onnx')
    onnx.save(model, probe)
    out = OnnxRunner(probe, threads=1, optimization=optimization)(x)
    return {prefix: out[value].astype(np.int64)
            for prefix, value in values.items()}


def local_flips(backbone, graph_codes, x, prefix='backbone.'):
    """Compare every quantizer's codes with the graph's, operator by
    operator: each active quantizer of ``backbone`` hands on the graph's
    codes (dequantized) instead of its own, so every operator reads exactly
    what its twin in the graph reads, and one flipped code cannot flip more
    downstream.

    Returns:
        list[tuple]: ``(quantizer, fraction flipped, largest difference,
        largest tie distance of a flipped value (0 without flips))``.
    """
    results, handles = [], []
    for name, quantizer in backbone.named_modules():
        if not (isinstance(quantizer, ActivationFakeQuantize)
                and quantizer.active):
            continue
        key = prefix + name
        if key not in graph_codes:  # a layer's input quantizer
            key = key[:-len('.input_quant')]

        def hook(module, inputs, out, name=name, key=key):
            diff = np.abs(graph_codes[key] - codes_of(module, name, out))
            ties = tie_distance(module, name, inputs[0])[diff > 0]
            results.append((name, float((diff > 0).mean()), int(diff.max()),
                            float(ties.max()) if ties.size else 0.))
            return dequantize(module, name, graph_codes[key])

        handles.append(quantizer.register_forward_hook(hook))
    with torch.no_grad():
        backbone(x)
    for handle in handles:
        handle.remove()
    return results


@pytest.mark.parametrize('bits', SETTINGS)
def test_integer_graph_computes_the_references_codes(
        tmp_path, bits, ssl_checkpoint):  # noqa: F811
    """Through the export tool's path (calibrate, snap, export, save the
    reference): unoptimized and optimized, every quantizer of the graph gives
    the saved reference's codes, but for values at a rounding tie."""
    if bits == 'mixed':
        save_bit_setting(MIXED, tmp_path / 'bits.yml')
        bits = f"mixed:{tmp_path / 'bits.yml'}"
    out, calib = str(tmp_path / 'm.onnx'), str(tmp_path / 'calib.pth')
    export_checkpoint(ssl_checkpoint, out, bits,
                      calib_images=uint8_images(32), calib_batches=2,
                      batch_size=16, placement='integer',
                      save_calibrated_to=calib)
    reference = build_backbone(load_pretrained(calib),
                               parse_bit_setting(bits), calib)
    x = normalized(uint8_images(8, seed=1))
    for optimization in ('disable', 'all'):
        results = local_flips(reference,
                              onnx_codes(out, x, optimization, tmp_path), x)
        # per block conv2's input, branch and output; 4 shortcuts (the stem
        # is wider than layer1); the stem output (layer1.0.input_quant)
        assert len(results) == 8 * 3 + 4 + 1
        for quantizer, flipped, largest, off_tie in results:
            # float arithmetic differs (summation order, the kernels'
            # requantization): a value within ~1e-5 of a step from a
            # rounding tie may land on the neighbouring code, nothing else
            assert largest <= 1 and flipped <= 1e-3 and off_tie < 1e-4, (
                optimization, quantizer, flipped, largest, off_tie)


def test_snapping_moves_the_model_not_the_graph(tmp_path):
    """The exported codes stay; the PyTorch model's folded biases move onto
    the int32 grid the graph stores them on, by at most half a step."""
    model = tiny_resnet(2, 4, placement='integer')
    before, _ = export_qdq_model(model)
    moves = snap_biases(model)
    after, _ = export_qdq_model(model)
    assert before.SerializeToString() == after.SerializeToString()
    # every quantized conv but the float-input stem, by up to half a step
    assert len(moves) == len(list(quant_layers(model))) - 1
    assert 0.1 < max(moves.values()) <= 0.5 + 1e-6
    again = snap_biases(model)
    assert max(again.values()) < 1e-3
