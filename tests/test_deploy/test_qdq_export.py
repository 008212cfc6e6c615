"""QDQ export of quantized ResNets: graph structure, onnxruntime parity."""
import numpy as np
import onnx
import pytest
import torch
from mmpretrain.registry import MODELS
from onnx import numpy_helper
from torch import nn

import ssql_mm.models  # noqa: F401
from ssql_mm.deploy import (OnnxRunner, export_qdq_model, optimized_graph,
                            optimized_op_counts, output_parity)
from ssql_mm.quantization import calibrate, quant_layers


def tiny_resnet(w_bits, a_bits, overrides=None, seed=0, **kwargs):
    """A narrow CIFAR ResNet-18 with non-trivial BN statistics, calibrated."""
    torch.manual_seed(seed)
    cfg = dict(type='QuantResNet_CIFAR', depth=18, base_channels=8,
               w_bits=w_bits, a_bits=a_bits, out_indices=(1, 3))
    cfg.update(kwargs)
    if overrides is not None:
        cfg['overrides'] = overrides
    model = MODELS.build(cfg)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.3, 0.3)
            module.running_var.uniform_(0.5, 2.0)
            # some negative BN factors: folded into negative weight scales
            module.weight.data.uniform_(-0.5, 1.5)
            module.bias.data.uniform_(-0.3, 0.3)
    model.eval()
    calibrate(model, [torch.randn(8, 3, 16, 16) for _ in range(2)])
    return model


def export(model, tmp_path, name='model.onnx', **kwargs):
    path = str(tmp_path / name)
    onnx_model, report = export_qdq_model(model, path, **kwargs)
    return path, onnx_model, report


class Graph:
    """Producers and initializers of an ONNX graph, for structural checks."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.inits = {t.name: numpy_helper.to_array(t)
                      for t in model.graph.initializer}
        self.producer = {out: n for n in model.graph.node for out in n.output}
        self.nodes = list(model.graph.node)

    def conv(self, layer_name):
        found = [n for n in self.nodes
                 if n.op_type == 'Conv' and n.name == f'{layer_name}/Conv']
        assert len(found) == 1, layer_name
        return found[0]

    def op(self, value):
        node = self.producer.get(value)
        return node.op_type if node is not None else None


def fake_quant_codes(weight, bits):
    """Integer codes by the definition (symmetric per channel, half-range)."""
    max_abs = weight.abs().flatten(1).max(1).values
    scale = max_abs / ((2**bits - 1) / 2)
    fq = torch.fake_quantize_per_channel_affine(
        weight, scale, torch.zeros_like(scale, dtype=torch.int32), 0,
        -2**(bits - 1), 2**(bits - 1) - 1)
    return fq, scale


def bn_name(conv_name):
    """The BatchNorm after a conv in mmpretrain's ResNet."""
    if conv_name.endswith('downsample.0'):
        return conv_name[:-1] + '1'
    head, _, tail = conv_name.rpartition('conv')
    return f'{head}bn{tail}'


def test_8w8a_graph_has_integer_weights_and_qdq_inputs(tmp_path):
    model = tiny_resnet(8, 8)
    _, onnx_model, report = export(model, tmp_path)
    graph = Graph(onnx_model)
    layers = dict(quant_layers(model))
    assert set(report.quantized) == set(layers)
    for name, layer in layers.items():
        conv = graph.conv(name)
        w_dq = graph.producer[conv.input[1]]
        assert w_dq.op_type == 'DequantizeLinear'
        codes, scale = graph.inits[w_dq.input[0]], graph.inits[w_dq.input[1]]
        assert codes.dtype == np.int8 and codes.shape == tuple(
            layer.weight.shape)
        assert scale.shape == (layer.weight.shape[0], )
        assert not graph.inits[w_dq.input[2]].any()  # symmetric
        # codes are PyTorch's fake-quant weight in units of its scale, and
        # the stored scale carries the folded BatchNorm factor
        fq, w_scale = fake_quant_codes(layer.weight.detach(), 8)
        assert torch.equal(torch.from_numpy(codes.astype(np.float32)),
                           torch.round(fq / w_scale.view(-1, 1, 1, 1)))
        bn = model.get_submodule(bn_name(name))
        g = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        torch.testing.assert_close(torch.from_numpy(scale.copy()),
                                   (w_scale * g).detach().float())
        x_in = graph.producer.get(conv.input[0])
        if name == 'conv1':  # the image stays float (paper assignment)
            assert conv.input[0] == 'input'
        else:
            assert x_in.op_type == 'DequantizeLinear'
            q = graph.producer[x_in.input[0]]
            assert q.op_type == 'QuantizeLinear'
            assert graph.inits[q.input[2]].dtype == np.uint8
    # per-tensor activation parameters are scalars, as ONNX defines them
    for node in graph.nodes:
        if node.op_type in ('QuantizeLinear', 'DequantizeLinear') and (
                node.input[0] not in graph.inits):
            assert graph.inits[node.input[1]].shape == ()
            assert graph.inits[node.input[2]].shape == ()
    # BN folded: no BatchNormalization left, no Clip at 8 bits
    ops = {n.op_type for n in graph.nodes}
    assert 'BatchNormalization' not in ops and 'Clip' not in ops
    assert len(report.folded_bn) == len(layers)


@pytest.mark.parametrize('bits', [(8, 8), (4, 4), (2, 4)])
def test_onnxruntime_matches_fake_quant(tmp_path, bits):
    model = tiny_resnet(*bits)
    path, _, _ = export(model, tmp_path, output_names=['s1', 's3'])
    runner = OnnxRunner(path, threads=1)
    x = torch.randn(6, 3, 16, 16)
    with torch.no_grad():
        ref = model(x)
    out = runner(x)
    for name, r in zip(('s1', 's3'), ref):
        stats = output_parity(r, torch.from_numpy(out[name]), bits[1])
        assert stats.within_one_step >= 0.999, (name, stats)
        assert stats.mean_abs_diff < 0.05 * stats.step, (name, stats)


def test_4w4a_codes_and_clipped_inputs(tmp_path):
    model = tiny_resnet(4, 4)
    _, onnx_model, report = export(model, tmp_path)
    graph = Graph(onnx_model)
    for name, layer in quant_layers(model):
        conv = graph.conv(name)
        codes = graph.inits[graph.producer[conv.input[1]].input[0]]
        w_bits = layer.weight_quant.bits
        assert codes.min() >= -2**(w_bits - 1)
        assert codes.max() <= 2**(w_bits - 1) - 1
        if name == 'conv1':
            assert w_bits == 8 and codes.max() > 7  # stem stays 8-bit
            continue
        dq = graph.producer[conv.input[0]]
        feeder = graph.producer[dq.input[0]]
        if layer.input_quant.bits == 4:
            assert feeder.op_type == 'Clip'
            assert graph.inits[feeder.input[2]].shape == ()  # a scalar bound
            assert graph.inits[feeder.input[2]].item() == 15
            assert graph.op(feeder.input[0]) == 'QuantizeLinear'
        else:  # layer1.0.conv1 reads the stem output at 8 bits
            assert layer.input_quant.bits == 8
            assert feeder.op_type == 'QuantizeLinear'
    assert 'layer1.0.conv1' not in report.clipped_inputs
    assert 'layer1.0.conv2' in report.clipped_inputs


def test_sub8bit_inputs_outside_calibrated_range_are_clipped(tmp_path):
    # Inputs far outside the calibration range: without the 4-bit clip the
    # uint8 codes would run up to 255 and the outputs would diverge.
    model = tiny_resnet(4, 4)
    path, _, _ = export(model, tmp_path, output_names=['s1', 's3'])
    x = 6 * torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        ref = model(x)[1]
    out = torch.from_numpy(OnnxRunner(path, threads=1)(x)['s3'])
    stats = output_parity(ref, out, 4)
    assert stats.within_one_step >= 0.999, stats


def test_float_pinned_layer_has_no_qdq(tmp_path):
    pinned = 'layer2.0.conv1'
    overrides = [dict(name='conv1', w_bits=8, a_bits=None),
                 dict(name=pinned, w_bits=None, a_bits=None)]
    model = tiny_resnet(4, 4, overrides=overrides)
    _, onnx_model, report = export(model, tmp_path)
    graph = Graph(onnx_model)
    conv = graph.conv(pinned)
    assert graph.inits[conv.input[1]].dtype == np.float32
    assert conv.input[1] not in graph.producer  # an initializer, no DQ
    assert graph.op(conv.input[0]) != 'DequantizeLinear'
    assert report.float_layers == [pinned]
    assert pinned not in report.quantized


def test_integer_placement_runs_every_conv_and_addition_as_integer(
        tmp_path):
    model = tiny_resnet(8, 8, placement='integer')
    path, _, report = export(model, tmp_path)
    # 8 block outputs, 8 branch outputs, 4 downsample outputs (the 64-channel
    # stem changes width before layer1), the stem output
    assert len(report.tensor_quantizers) == 8 + 8 + 4 + 1
    ops = optimized_op_counts(path)
    convs = len(list(quant_layers(model)))
    assert ops['QLinearConv'] == convs - 1  # all but the float-input stem
    float_convs = sum(n for op, n in ops.items()
                      if op in ('Conv', 'FusedConv', 'ConvInteger'))
    assert float_convs == 1
    assert ops['QLinearAdd'] == 8 and ops.get('Add', 0) == 0


def test_inputs_placement_leaves_pre_add_convs_float(tmp_path):
    """What the integer placement is for: with conv inputs quantized only,
    convs feeding an addition have no output quantizer and run in float."""
    path, _, _ = export(tiny_resnet(8, 8, placement='inputs'), tmp_path)
    ops = optimized_op_counts(path)
    assert ops.get('QLinearAdd', 0) == 0
    assert ops['QLinearConv'] < len(list(quant_layers(tiny_resnet(8, 8)))) - 4


@pytest.mark.parametrize('placement', ['paper', 'integer'])
@pytest.mark.parametrize('w_bits,a_bits', [(8, 8), (4, 4), (2, 4)])
def test_placement_export_parity(tmp_path, placement, w_bits, a_bits):
    """Stage outputs are block-output codes: the graph gives the same codes
    as PyTorch but where rounding the int32 bias (and float order) moves a
    value across a rounding tie; such flips grow with depth."""
    model = tiny_resnet(w_bits, a_bits, placement=placement,
                        out_indices=(0, 3))
    path, _, _ = export(model, tmp_path, output_names=['s0', 's3'])
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        refs = model(x)
    outs = OnnxRunner(path, threads=1)(x)
    steps = []
    for ref, name, layer in zip(refs, ('s0', 's3'),
                                (model.layer1, model.layer4)):
        quantizer = layer[-1].output_quant
        scale = (quantizer.observer.max_val - quantizer.observer.min_val) / (
            2**a_bits - 1)
        steps.append((torch.from_numpy(outs[name]) - ref).abs() / scale)
    first, last = steps
    assert (first < 1e-3).float().mean() >= 0.98  # 2-bit weights: coarse bias grid
    assert first.max() <= 3.01
    assert last.mean() <= 0.1


def test_stem_max_pool_stays_float_in_the_graph_run(tmp_path):
    # onnxruntime's QDQ propagation would hoist the first QuantizeLinear
    # above the MaxPool, onto a slow uint8 NCHW MaxPool; the runner keeps
    # PyTorch's order (pool in float, then quantize), with the same codes.
    # (at 16 stem channels onnxruntime 1.32 does hoist it, at 8 it does not)
    model = tiny_resnet(8, 8, type='QuantResNet', depth=18, base_channels=8,
                        stem_channels=16)
    path, _, _ = export(model, tmp_path)
    graph = optimized_graph(path)
    producer = {out: n for n in graph.node for out in n.output}
    pools = [n for n in graph.node if 'MaxPool' in n.op_type]
    assert len(pools) == 1
    feeder = producer[pools[0].input[0]]
    assert 'QuantizeLinear' not in feeder.op_type, feeder.op_type
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)[-1]
    out = torch.from_numpy(OnnxRunner(path, threads=1)(x)['output1'])
    assert output_parity(ref, out, 8).within_one_step >= 0.999


def test_avg_down_resnet_v1d_exports(tmp_path):
    model = tiny_resnet(8, 8, type='QuantResNetV1d', depth=18,
                        base_channels=8, stem_channels=8)
    path, _, report = export(model, tmp_path, output_names=['s1', 's3'])
    assert not report.float_layers
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)[1]
    out = torch.from_numpy(OnnxRunner(path, threads=1)(x)['s3'])
    assert output_parity(ref, out, 8).within_one_step >= 0.999


def test_bad_input_gives_clear_errors(tmp_path):
    model = tiny_resnet(8, 8)
    with pytest.raises(ValueError, match='opset 12 is too old.*13'):
        export(model, tmp_path, opset=12)
    with pytest.raises(ValueError, match='2 outputs but 1 output names'):
        export(model, tmp_path, output_names=['only'])

    uncalibrated = MODELS.build(dict(type='QuantResNet_CIFAR', depth=18,
                                     base_channels=8, w_bits=4, a_bits=4))
    with pytest.raises(ValueError, match='no activation range.*--calib-data'):
        export(uncalibrated, tmp_path)

    sixteen = tiny_resnet(16, 16)
    with pytest.raises(ValueError, match='16-bit.*2-8 bits'):
        export(sixteen, tmp_path)

    class WithSigmoid(nn.Module):

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.act = nn.Sigmoid()

        def forward(self, x):
            return self.act(self.conv(x))

    with pytest.raises(ValueError, match="module 'act' \\(Sigmoid\\)"):
        export(WithSigmoid(), tmp_path)


def test_observer_chosen_weight_clip_is_what_gets_exported(tmp_path):
    model = tiny_resnet(4, 4)
    name, layer = next((n, m) for n, m in quant_layers(model)
                       if n == 'layer1.0.conv1')

    def half_range(weight, bits, ch_axis):  # clip every channel at half max|w|
        return weight.abs().flatten(1).amax(1) / 2

    layer.weight_quant.set_clip(half_range)
    _, onnx_model, _ = export(model, tmp_path)
    graph = Graph(onnx_model)
    w_dq = graph.producer[graph.conv(name).input[1]]
    codes = graph.inits[w_dq.input[0]].astype(np.float32)
    max_abs = layer.weight.detach().abs().flatten(1).amax(1) / 2
    scale = max_abs / 7.5
    expected = torch.clamp(torch.round(layer.weight.detach() /
                                       scale.view(-1, 1, 1, 1)), -8, 7)
    assert torch.equal(torch.from_numpy(codes), expected)
    assert (np.abs(codes) == 8).any() or (codes == 7).any()  # clipped codes
