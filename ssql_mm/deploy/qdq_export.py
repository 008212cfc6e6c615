"""Write a fake-quantized PyTorch model as an ONNX model in QDQ form.

The model is traced with ``torch.fx`` (quantized layers are leaves), and
each traced operation becomes ONNX nodes:

- a quantized conv / linear becomes, for its input,
  ``QuantizeLinear -> [Clip] -> DequantizeLinear`` (uint8, per tensor; the
  ``Clip`` on the uint8 codes keeps a b-bit input inside ``[0, 2^b - 1]``),
  for its weight ``DequantizeLinear`` of an int8 initializer (per output
  channel, symmetric, zero point 0), then ``Conv`` / ``Gemm``. A quantizer
  that is off leaves that side float, so float-pinned layers are plain
  ``Conv`` / ``Gemm`` nodes with float initializers;
- a BatchNorm right after a conv is folded into it (see ``encoding``);
- ReLU, max/avg pooling, global pooling, flatten and residual additions map
  to their ONNX operators; anything else is refused with its name.

- an activation quantizer outside a layer (those a residual block holds
  around its addition under the ``paper`` and ``integer`` placements)
  becomes ``QuantizeLinear -> [Clip] -> DequantizeLinear`` on its tensor.

Two quantized layers reading the same tensor with the same parameters (a
block's first conv and its downsample conv) share one Q/DQ pair. A layer
whose own input quantizer is off but whose input leaves a Q/DQ pair stores
its bias as int32 codes on that pair's grid, as integer kernels need.

Under the ``integer`` placement every conv output that enters an addition is
quantized, so an integer runtime fuses every ``DQ -> Conv -> Q`` into an
integer conv and every ``DQ, DQ -> Add -> [Relu] -> Q`` into an integer
addition: the graph is the PyTorch model and runs as integer kernels.
"""
import operator
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper
from torch import fx, nn

from ssql_mm.checkpoint import atomic_write_bytes
from ssql_mm.quantization import ActivationFakeQuantize, QuantLayerMixin
from .encoding import (ActivationEncoding, LayerEncoding,
                       activation_encoding, encode_layer)
from .onnx_graph import GraphBuilder, check_opset

__all__ = [
    'DEFAULT_OPSET', 'ExportReport', 'TracedLayer', 'trace_model',
    'traced_layers', 'export_qdq_model'
]

DEFAULT_OPSET = 17
_ADD = (operator.add, operator.iadd, torch.add)
_PASS_THROUGH = (nn.Identity, nn.Dropout)
_SUPPORTED = ('Conv2d / Linear (quantized or float), BatchNorm2d, ReLU, '
              'MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1), Identity, Dropout, '
              'add, relu, flatten(x, 1), mean over (2, 3)')


@dataclass
class ExportReport:
    """What :func:`export_qdq_model` wrote.

    Args:
        outputs (list[str]): Graph output names, in order.
        quantized (dict[str, tuple]): Per quantized layer, its exported
            ``(w_bits, a_bits)`` (None for a float side).
        float_layers (list[str]): Conv/linear layers exported in float.
        folded_bn (dict[str, str]): BatchNorm name -> conv it was folded into.
        clipped_inputs (list[str]): Layers whose sub-8-bit input codes are
            clipped to the b-bit range.
        float_bias (list[str]): Quantized layers whose bias stayed float
            because its int32 codes would overflow.
        tensor_quantizers (list[str]): Activation quantizers outside layers
            (around residual additions) written as Q/DQ pairs.
        opset (int): The default-domain opset.
        snapped_biases (dict[str, float]): Layers whose PyTorch bias was
            moved onto its int32 grid before the export, with the largest
            move in accumulator steps (``snap_biases``; filled by the
            export pipeline, empty from :func:`export_qdq_model`).
    """
    outputs: List[str] = field(default_factory=list)
    quantized: Dict[str, Tuple[Optional[int], Optional[int]]] = field(
        default_factory=dict)
    float_layers: List[str] = field(default_factory=list)
    folded_bn: Dict[str, str] = field(default_factory=dict)
    clipped_inputs: List[str] = field(default_factory=list)
    float_bias: List[str] = field(default_factory=list)
    tensor_quantizers: List[str] = field(default_factory=list)
    opset: int = DEFAULT_OPSET
    snapped_biases: Dict[str, float] = field(default_factory=dict)


@dataclass
class TracedLayer:
    """A conv / linear layer of a traced model, as the export encodes it.

    Args:
        name (str): Module name of the layer.
        bn (str, optional): Module name of the BatchNorm folded into it.
        encoding (LayerEncoding): Its numbers.
    """
    name: str
    bn: Optional[str]
    encoding: LayerEncoding


class _QuantLeafTracer(fx.Tracer):
    """Traces through containers; stops at (quantized) conv/linear layers
    and activation quantizers."""

    def is_leaf_module(self, module: nn.Module, qualname: str) -> bool:
        return isinstance(module, (QuantLayerMixin, ActivationFakeQuantize)
                          ) or super().is_leaf_module(module, qualname)


def _pair(value: Any) -> List[int]:
    return list(value) if isinstance(value, (tuple, list)) else [value, value]


class _Emitter:
    """Walks the traced graph and writes ONNX nodes."""

    def __init__(self, model: nn.Module, graph: fx.Graph) -> None:
        self.model = model
        self.modules = dict(model.named_modules())
        self.graph = graph
        self.b = GraphBuilder()
        self.report = ExportReport()
        self.layers: List[TracedLayer] = []
        self.env: Dict[fx.Node, Any] = {}
        self._qdq_cache: Dict[Tuple[str, tuple], str] = {}
        self._dq_encoding: Dict[str, ActivationEncoding] = {}
        self._bn_of = self._find_conv_bn_pairs()

    # ----------------------------------------------------------- structure
    def _module(self, node: fx.Node) -> Optional[nn.Module]:
        return self.modules[node.target] if node.op == 'call_module' else None

    def _find_conv_bn_pairs(self) -> Dict[fx.Node, fx.Node]:
        """conv node -> the BN node that alone consumes its output."""
        pairs = {}
        for node in self.graph.nodes:
            if not isinstance(self._module(node), nn.Conv2d):
                continue
            users = list(node.users)
            if len(users) == 1 and isinstance(self._module(users[0]),
                                              nn.BatchNorm2d):
                pairs[node] = users[0]
        return pairs

    # ------------------------------------------------------------- emission
    def _unsupported(self, node: fx.Node, what: str) -> ValueError:
        return ValueError(f'Cannot export {what} (traced as {node.name!r}) to '
                          f'ONNX; the exporter supports {_SUPPORTED}.')

    def _qdq(self, x: str, enc: ActivationEncoding, prefix: str) -> str:
        key = (x, enc.key)
        if key in self._qdq_cache:
            return self._qdq_cache[key]
        b = self.b
        scale = b.constant(f'{prefix}.input_scale', np.array(
            enc.scale, dtype=np.float32))
        zero = b.constant(f'{prefix}.input_zero_point', np.array(
            enc.zero_point, dtype=np.uint8))
        codes = b.node('QuantizeLinear', [x, scale, zero],
                       f'{prefix}/input/QuantizeLinear')
        if enc.qmax < 255:
            low = b.constant(f'{prefix}.input_code_min',
                             np.array(0, dtype=np.uint8))
            high = b.constant(f'{prefix}.input_code_max',
                              np.array(enc.qmax, dtype=np.uint8))
            codes = b.node('Clip', [codes, low, high],
                           f'{prefix}/input/Clip')
            self.report.clipped_inputs.append(prefix)
        out = b.node('DequantizeLinear', [codes, scale, zero],
                     f'{prefix}/input/DequantizeLinear')
        self._qdq_cache[key] = out
        self._dq_encoding[out] = enc
        return out

    def _weight(self, enc: LayerEncoding) -> str:
        b, name = self.b, enc.name
        if enc.codes is None:
            return b.constant(f'{name}.weight', enc.weight.astype(np.float32))
        codes = b.constant(f'{name}.weight_codes', enc.codes)
        scale = b.constant(f'{name}.weight_scale', enc.weight_scale)
        zero = b.constant(f'{name}.weight_zero_point',
                          np.zeros(enc.codes.shape[0], dtype=np.int8))
        return b.node('DequantizeLinear', [codes, scale, zero],
                      f'{name}/weight/DequantizeLinear', axis=0)

    def _bias(self, enc: LayerEncoding) -> Optional[str]:
        b, name = self.b, enc.name
        if enc.bias is None:
            return None
        if enc.bias_codes is None:
            if enc.input is not None and enc.codes is not None:
                self.report.float_bias.append(name)
            return b.constant(f'{name}.bias', enc.bias.astype(np.float32))
        codes = b.constant(f'{name}.bias_codes', enc.bias_codes)
        scale = b.constant(f'{name}.bias_scale', enc.bias_scale)
        zero = b.constant(f'{name}.bias_zero_point',
                          np.zeros(enc.bias_codes.shape[0], dtype=np.int32))
        return b.node('DequantizeLinear', [codes, scale, zero],
                      f'{name}/bias/DequantizeLinear', axis=0)

    def _layer(self, node: fx.Node, layer: nn.Module, x: str) -> str:
        bn_node = self._bn_of.get(node)
        bn = self.modules[bn_node.target] if bn_node is not None else None
        enc = encode_layer(node.target, layer, bn, self._dq_encoding.get(x))
        self.layers.append(TracedLayer(
            node.target, bn_node.target if bn_node is not None else None, enc))
        if bn_node is not None:
            self.report.folded_bn[bn_node.target] = node.target
        if enc.quantized:
            self.report.quantized[enc.name] = (
                enc.w_bits, enc.input.bits if enc.input else None)
        else:
            self.report.float_layers.append(enc.name)
        if enc.input is not None:
            x = self._qdq(x, enc.input, enc.name)
        inputs = [x, self._weight(enc)]
        bias = self._bias(enc)
        if bias is not None:
            inputs.append(bias)
        if isinstance(layer, nn.Linear):
            return self.b.node('Gemm', inputs, f'{enc.name}/Gemm', transB=1)
        if layer.padding_mode != 'zeros' or isinstance(layer.padding, str):
            raise self._unsupported(
                node, f'conv {enc.name!r} with padding {layer.padding!r} / '
                f'mode {layer.padding_mode!r} (zero padding by numbers only)')
        pads = _pair(layer.padding)
        return self.b.node(
            'Conv', inputs, f'{enc.name}/Conv',
            kernel_shape=_pair(layer.kernel_size), strides=_pair(layer.stride),
            pads=pads + pads, dilations=_pair(layer.dilation),
            group=layer.groups)

    def _call_module(self, node: fx.Node, args: list) -> Any:
        module = self._module(node)
        name = node.target
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            return self._layer(node, module, args[0])
        if isinstance(module, ActivationFakeQuantize):
            enc = activation_encoding(module, name)
            if enc is None:
                return args[0]
            self.report.tensor_quantizers.append(name)
            return self._qdq(args[0], enc, name)
        if isinstance(module, nn.BatchNorm2d):
            if node.args[0] in self._bn_of and self._bn_of[
                    node.args[0]] is node:
                return args[0]
            return self._batch_norm(node, module, args[0])
        if isinstance(module, nn.ReLU):
            return self.b.node('Relu', [args[0]], f'{name}/Relu')
        if isinstance(module, _PASS_THROUGH):
            return args[0]
        if isinstance(module, nn.MaxPool2d) and not module.return_indices:
            pads = _pair(module.padding)
            return self.b.node(
                'MaxPool', [args[0]], f'{name}/MaxPool',
                kernel_shape=_pair(module.kernel_size),
                strides=_pair(module.stride), pads=pads + pads,
                dilations=_pair(module.dilation),
                ceil_mode=int(module.ceil_mode))
        if isinstance(module, nn.AvgPool2d) and (module.divisor_override
                                                 is None):
            pads = _pair(module.padding)
            return self.b.node(
                'AveragePool', [args[0]], f'{name}/AveragePool',
                kernel_shape=_pair(module.kernel_size),
                strides=_pair(module.stride), pads=pads + pads,
                ceil_mode=int(module.ceil_mode),
                count_include_pad=int(module.count_include_pad))
        if isinstance(module, nn.AdaptiveAvgPool2d) and _pair(
                module.output_size) == [1, 1]:
            return self.b.node('GlobalAveragePool', [args[0]],
                               f'{name}/GlobalAveragePool')
        raise self._unsupported(node, f'module {name!r} '
                                f'({type(module).__name__})')

    def _batch_norm(self, node: fx.Node, bn: nn.BatchNorm2d, x: str) -> str:
        b, name = self.b, node.target
        ones = torch.ones_like(bn.running_var)
        params = [
            bn.weight if bn.weight is not None else ones,
            bn.bias if bn.bias is not None else torch.zeros_like(ones),
            bn.running_mean, bn.running_var
        ]
        names = [
            b.constant(f'{name}.{key}', p.detach().float().cpu().numpy())
            for key, p in zip(('weight', 'bias', 'running_mean',
                               'running_var'), params)
        ]
        return b.node('BatchNormalization', [x] + names,
                      f'{name}/BatchNormalization', epsilon=bn.eps)

    def _flatten(self, node: fx.Node, args: list, kwargs: dict) -> str:
        start = args[1] if len(args) > 1 else kwargs.get('start_dim', 0)
        end = args[2] if len(args) > 2 else kwargs.get('end_dim', -1)
        if start != 1 or end != -1:
            raise self._unsupported(node, f'flatten({start}, {end})')
        return self.b.node('Flatten', [args[0]], f'{node.name}/Flatten',
                           axis=1)

    def _call_function(self, node: fx.Node, args: list,
                       kwargs: dict) -> Any:
        fn = node.target
        if fn is operator.getitem:
            return args[0][args[1]]
        if fn in _ADD and not kwargs and all(isinstance(a, str) for a in args):
            return self.b.node('Add', args, f'{node.name}/Add')
        if fn in (torch.relu, F.relu) and len(args) == 1:
            return self.b.node('Relu', args, f'{node.name}/Relu')
        if fn is torch.flatten:
            return self._flatten(node, args, kwargs)
        name = getattr(fn, '__name__', fn)
        raise self._unsupported(node, f'function {name}')

    def _call_method(self, node: fx.Node, args: list, kwargs: dict) -> Any:
        method = node.target
        if method == 'relu' and len(args) == 1:
            return self.b.node('Relu', args, f'{node.name}/Relu')
        if method == 'flatten':
            return self._flatten(node, args, kwargs)
        if method == 'mean':
            dims = args[1] if len(args) > 1 else kwargs.get('dim')
            if tuple(dims or ()) in ((2, 3), (-2, -1)) and not kwargs.get(
                    'keepdim', False):
                pooled = self.b.node('GlobalAveragePool', [args[0]],
                                     f'{node.name}/GlobalAveragePool')
                return self.b.node('Flatten', [pooled],
                                   f'{node.name}/Flatten', axis=1)
        raise self._unsupported(node, f'method .{method}()')

    def _value(self, arg: Any) -> Any:
        return fx.node.map_arg(arg, lambda n: self.env[n])

    def run(self, input_name: str) -> List[str]:
        outputs: List[str] = []
        placeholders = [n for n in self.graph.nodes if n.op == 'placeholder']
        if len(placeholders) != 1:
            raise ValueError('The exported model must take exactly one '
                             f'input tensor, its forward takes '
                             f'{len(placeholders)}.')
        for node in self.graph.nodes:
            if node.op == 'placeholder':
                self.env[node] = input_name
            elif node.op == 'output':
                outputs = _flat_values(self._value(node.args[0]))
            else:
                args = list(self._value(node.args))
                kwargs = dict(self._value(node.kwargs))
                if node.op == 'call_module':
                    self.env[node] = self._call_module(node, args)
                elif node.op == 'call_function':
                    self.env[node] = self._call_function(node, args, kwargs)
                elif node.op == 'call_method':
                    self.env[node] = self._call_method(node, args, kwargs)
                else:
                    raise self._unsupported(node, f'{node.op} {node.target}')
        return outputs


def trace_model(model: nn.Module) -> fx.Graph:
    """Trace ``model`` in eval mode with (quantized) conv/linear as leaves.

    Args:
        model (nn.Module): The model.

    Returns:
        fx.Graph: The traced graph.
    """
    model.eval()
    return _QuantLeafTracer().trace(model)


@torch.no_grad()
def traced_layers(model: nn.Module) -> List[TracedLayer]:
    """Every conv / linear layer of ``model`` as :func:`export_qdq_model`
    encodes it: BatchNorm folded, bias codes on the grid of the codes the
    kernel reads (set by its own input quantizer or an upstream one).

    Args:
        model (nn.Module): The model, one image tensor in (eval mode is set).

    Returns:
        list[TracedLayer]: In graph order.
    """
    emitter = _Emitter(model, trace_model(model))
    emitter.run('input')
    return emitter.layers


def _flat_values(value: Any) -> List[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (tuple, list)):
        return [v for item in value for v in _flat_values(item)]
    raise ValueError(f'The model returns {type(value).__name__}; the export '
                     'needs tensors or (nested) tuples/lists of tensors.')


@torch.no_grad()
def export_qdq_model(model: nn.Module,
                     path: Optional[str] = None,
                     output_names: Optional[Sequence[str]] = None,
                     in_channels: int = 3,
                     opset: int = DEFAULT_OPSET,
                     metadata: Optional[Dict[str, str]] = None,
                     input_name: str = 'input'
                     ) -> Tuple[onnx.ModelProto, ExportReport]:
    """Export ``model`` as it computes now (eval mode) to a QDQ ONNX model.

    Quantizers are exported as they act: a quantized layer in ``quantize``
    mode with its frozen or recorded range becomes QDQ nodes, a quantizer
    that is off stays float. The model itself is not changed (it is put in
    eval mode).

    Args:
        model (nn.Module): The model, one image tensor in, tensors out.
        path (str, optional): Where to write the ``.onnx`` file, atomically
            (a crash leaves the previous file or the whole new one; a full
            disk raises ``CheckpointWriteError`` naming the path). Defaults
            to None (not written).
        output_names (Sequence[str], optional): One name per output tensor.
            Defaults to None (``output`` or ``output0``, ``output1``, ...).
        in_channels (int): Channels of the input ``(N, C, H, W)``; N, H, W
            stay dynamic. Defaults to 3.
        opset (int): Default-domain opset, at least 13. Defaults to 17.
        metadata (dict[str, str], optional): Stored as ``metadata_props``.
            Defaults to None.
        input_name (str): Name of the graph input. Defaults to 'input'.

    Returns:
        tuple[ModelProto, ExportReport]: The model and what was exported.
    """
    opset = check_opset(opset)
    graph = trace_model(model)
    emitter = _Emitter(model, graph)
    values = emitter.run(input_name)
    if output_names is None:
        output_names = (['output'] if len(values) == 1 else
                        [f'output{i}' for i in range(len(values))])
    if len(output_names) != len(values):
        raise ValueError(f'The model has {len(values)} outputs but '
                         f'{len(output_names)} output names were given.')
    graph_input = helper.make_tensor_value_info(
        input_name, TensorProto.FLOAT, ['N', in_channels, 'H', 'W'])
    onnx_model = emitter.b.model([graph_input],
                                 dict(zip(output_names, values)), opset,
                                 type(model).__name__, metadata)
    report = emitter.report
    report.outputs, report.opset = list(output_names), opset
    if path is not None:
        atomic_write_bytes(onnx_model.SerializeToString(), path)
    return onnx_model, report
