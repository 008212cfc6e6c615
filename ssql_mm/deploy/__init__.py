"""Deployment: export at a chosen bit-width to QDQ ONNX, run in onnxruntime.

Needs the ``deploy`` extra (``onnx``, ``onnxruntime``; see
``requirements/deploy.txt``).
"""
from .bias_grid import snap_biases
from .encoding import (MAX_EXPORT_BITS, ActivationEncoding, LayerEncoding,
                       activation_encoding, encode_layer, quantize_bias)
from .onnx_graph import MIN_OPSET, check_opset
from .parity import ParityStats, output_parity
from .pipeline import (FeatureModel, build_backbone,
                       build_configured_backbone, export_checkpoint,
                       export_configured_backbone, load_linear_head,
                       parse_export_bits, require_ranges,
                       save_calibrated)
from .qdq_export import (DEFAULT_OPSET, ExportReport, TracedLayer,
                         export_qdq_model, trace_model, traced_layers)
from .runner import OnnxRunner, optimized_graph, optimized_op_counts

__all__ = [
    'MAX_EXPORT_BITS', 'ActivationEncoding', 'LayerEncoding',
    'activation_encoding', 'encode_layer', 'quantize_bias', 'MIN_OPSET',
    'check_opset', 'ParityStats', 'output_parity', 'FeatureModel',
    'build_backbone', 'build_configured_backbone', 'export_checkpoint',
    'export_configured_backbone', 'load_linear_head', 'parse_export_bits',
    'require_ranges', 'save_calibrated',
    'DEFAULT_OPSET', 'ExportReport', 'TracedLayer', 'export_qdq_model',
    'trace_model', 'traced_layers', 'snap_biases',
    'OnnxRunner', 'optimized_graph', 'optimized_op_counts'
]
