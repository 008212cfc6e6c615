"""A small ONNX graph under construction: unique names, initializers, nodes."""
from typing import Dict, List, Optional, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ['MIN_OPSET', 'GraphBuilder', 'check_opset']

# Per-axis (per-channel) QuantizeLinear / DequantizeLinear arrived in opset 13.
MIN_OPSET = 13


def check_opset(opset: int) -> int:
    """Validate the ONNX opset of an export.

    Args:
        opset (int): The requested default-domain opset.

    Returns:
        int: ``opset``.
    """
    newest = onnx.defs.onnx_opset_version()
    if not isinstance(opset, int) or isinstance(opset, bool):
        raise TypeError(f'opset must be an int, got {opset!r}.')
    if opset < MIN_OPSET:
        raise ValueError(
            f'ONNX opset {opset} is too old for a QDQ model with per-channel '
            f'weight scales (needs >= {MIN_OPSET}); pass --opset '
            f'{MIN_OPSET} or newer.')
    if opset > newest:
        raise ValueError(f'ONNX opset {opset} is newer than the installed '
                         f'onnx {onnx.__version__} knows ({newest}); pass '
                         f'--opset {newest} or older.')
    return opset


class GraphBuilder:
    """Collects nodes and initializers and turns them into a ModelProto."""

    def __init__(self) -> None:
        self.nodes: List[onnx.NodeProto] = []
        self.initializers: List[onnx.TensorProto] = []
        self._names: Dict[str, int] = {}

    def unique(self, name: str) -> str:
        """``name``, or ``name_<k>`` if it is taken."""
        count = self._names.get(name, 0)
        self._names[name] = count + 1
        return name if count == 0 else f'{name}_{count}'

    def constant(self, name: str, array: np.ndarray) -> str:
        """Add an initializer and return its (unique) name.

        A 0-d array stays a scalar: per-tensor scales, zero points and clip
        bounds must be scalars (onnxruntime fuses QDQ groups into integer
        kernels such as ``QLinearAdd`` only then).
        """
        name = self.unique(name)
        self.initializers.append(numpy_helper.from_array(
            np.asarray(array, order='C'), name))
        return name

    def node(self, op_type: str, inputs: Sequence[str], name: str,
             **attrs) -> str:
        """Add a node with one output, named after the node.

        Args:
            op_type (str): ONNX operator.
            inputs (Sequence[str]): Input value names ('' for an absent one).
            name (str): Node name; its output is ``<name>:0``.
            **attrs: Operator attributes.

        Returns:
            str: The output value name.
        """
        name = self.unique(name)
        output = f'{name}:0'
        self.nodes.append(helper.make_node(op_type, list(inputs), [output],
                                           name=name, **attrs))
        return output

    def model(self, inputs: Sequence[onnx.ValueInfoProto],
              outputs: Dict[str, str], opset: int, graph_name: str,
              metadata: Optional[Dict[str, str]] = None) -> onnx.ModelProto:
        """Finish the graph.

        Args:
            inputs (Sequence[ValueInfoProto]): Graph inputs.
            outputs (dict[str, str]): Output name -> value name producing it.
            opset (int): Default-domain opset.
            graph_name (str): Graph name.
            metadata (dict[str, str], optional): ``metadata_props``.
                Defaults to None.

        Returns:
            ModelProto: A checked model with inferred shapes.
        """
        output_infos = []
        for out_name, value in outputs.items():
            self.nodes.append(helper.make_node(
                'Identity', [value], [out_name], name=f'{out_name}/Identity'))
            output_infos.append(helper.make_tensor_value_info(
                out_name, TensorProto.FLOAT, None))
        graph = helper.make_graph(self.nodes, graph_name, list(inputs),
                                  output_infos, self.initializers)
        opset_ids = [helper.make_opsetid('', opset)]
        model = helper.make_model(
            graph, opset_imports=opset_ids, producer_name='ssql_mm',
            ir_version=helper.find_min_ir_version_for(opset_ids))
        for key, value in (metadata or {}).items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        onnx.checker.check_model(model, full_check=True)
        return model
