"""Run an exported model with onnxruntime's CPU provider."""
import os.path as osp
import tempfile
from collections import Counter
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

from ssql_mm.checkpoint import CorruptCheckpointError
from ssql_mm.evaluation import normalized_batches

__all__ = ['OnnxRunner', 'optimized_graph', 'optimized_op_counts']

_LEVELS = {
    'disable': ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    'basic': ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    'extended': ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    'all': ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def _session_options(threads: Optional[int], optimization: str,
                     optimized_path: Optional[str]) -> ort.SessionOptions:
    if optimization not in _LEVELS:
        raise ValueError(f'Unknown graph optimization {optimization!r}; '
                         f'choose one of {sorted(_LEVELS)}.')
    options = ort.SessionOptions()
    options.graph_optimization_level = _LEVELS[optimization]
    options.log_severity_level = 3  # errors only
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if optimized_path is not None:
        options.optimized_model_filepath = optimized_path
    return options


# onnxruntime's QDQ propagation moves the QuantizeLinear after the stem's
# MaxPool in front of it, where the uint8 MaxPool runs in a plain NCHW loop
# (14 % of a ResNet-50 int8 run, against 1 % as a float MaxPool). Max
# pooling commutes with a monotone quantizer, so keeping PyTorch's order
# gives the same codes.
DISABLED_OPTIMIZERS = ('QDQPropagationTransformer', )


def _session(path: str, threads: Optional[int], optimization: str,
             optimized_path: Optional[str] = None) -> ort.InferenceSession:
    """An onnxruntime session; a model it cannot load is one-line error."""
    try:
        return ort.InferenceSession(
            path, _session_options(threads, optimization, optimized_path),
            providers=['CPUExecutionProvider'],
            disabled_optimizers=list(DISABLED_OPTIMIZERS))
    except (ort_errors.InvalidProtobuf, ort_errors.Fail,
            ort_errors.InvalidGraph, ort_errors.InvalidArgument,
            ort_errors.NotImplemented) as err:
        detail = ' '.join(str(err).split()).rstrip('.')
        if isinstance(err, ort_errors.InvalidProtobuf):
            raise CorruptCheckpointError(
                f"ONNX model '{path}' is damaged or cut short (an "
                f'interrupted export or copy?): {detail}. Export it again '
                'with tools/deploy/export_onnx.py.') from None
        raise ValueError(f"onnxruntime cannot load the ONNX model '{path}': "
                         f'{detail}. Export it again with '
                         'tools/deploy/export_onnx.py.') from None


class OnnxRunner:
    """An onnxruntime CPU session around an exported model.

    Args:
        path (str): The ``.onnx`` file.
        threads (int, optional): Intra-op threads. Defaults to None
            (onnxruntime's choice: one per physical core).
        optimization (str): Graph optimization level, ``'disable'``,
            ``'basic'``, ``'extended'`` or ``'all'``. Defaults to 'all'
            (QDQ groups become integer kernels), without the optimizers
            in ``DISABLED_OPTIMIZERS``.
    """

    def __init__(self, path: str, threads: Optional[int] = None,
                 optimization: str = 'all') -> None:
        if not osp.isfile(path):
            raise FileNotFoundError(f'ONNX model {path} not found.')
        self.path = path
        self.session = _session(path, threads, optimization)
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    @property
    def metadata(self) -> Dict[str, str]:
        """The model's ``metadata_props``."""
        return dict(self.session.get_modelmeta().custom_metadata_map)

    def __call__(self, x: Union[np.ndarray, torch.Tensor]
                 ) -> Dict[str, np.ndarray]:
        """Run one float batch.

        Args:
            x (ndarray | Tensor): ``(N, C, H, W)`` float32 input.

        Returns:
            dict[str, ndarray]: Output name -> array.
        """
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        outputs = self.session.run(
            None, {self.input_name: np.ascontiguousarray(x, np.float32)})
        return dict(zip(self.output_names, outputs))

    def extract(self, images: torch.Tensor, mean: Sequence[float],
                std: Sequence[float], output: Optional[str] = None,
                batch_size: int = 64,
                on_batch: Optional[Callable[[], None]] = None
                ) -> torch.Tensor:
        """One output for every image, normalised as for the PyTorch model.

        Args:
            images (Tensor): uint8 ``(N, 3, H, W)`` images.
            mean (Sequence[float]): Per-channel mean, 0-255 scale.
            std (Sequence[float]): Per-channel std, 0-255 scale.
            output (str, optional): Output name. Defaults to None (the
                first output).
            batch_size (int): Images per run. Defaults to 64.
            on_batch (Callable, optional): Called after every batch.
                Defaults to None.

        Returns:
            Tensor: The concatenated float32 outputs.
        """
        output = output or self.output_names[0]
        if output not in self.output_names:
            raise ValueError(f'The model has no output {output!r}; it has '
                             f'{self.output_names}.')
        chunks: List[torch.Tensor] = []
        for batch in normalized_batches(images, mean, std, batch_size,
                                        torch.device('cpu')):
            chunks.append(torch.from_numpy(self(batch)[output]))
            if on_batch is not None:
                on_batch()
        return torch.cat(chunks)


def optimized_graph(path: str, threads: Optional[int] = 1,
                    optimization: str = 'all') -> onnx.GraphProto:
    """The graph :class:`OnnxRunner` actually runs, after onnxruntime's
    optimizations.

    Args:
        path (str): The ``.onnx`` file.
        threads (int, optional): Intra-op threads. Defaults to 1.
        optimization (str): Graph optimization level. Defaults to 'all'.

    Returns:
        onnx.GraphProto: The optimized graph (``QLinearConv`` = integer
        conv, ``Conv`` / ``FusedConv`` = float conv).
    """
    with tempfile.TemporaryDirectory() as tmp:
        optimized = osp.join(tmp, 'optimized.onnx')
        _session(path, threads, optimization, optimized)
        return onnx.load(optimized, load_external_data=False).graph


def optimized_op_counts(path: str, threads: Optional[int] = 1,
                        optimization: str = 'all') -> Counter:
    """Operator counts of :func:`optimized_graph`.

    Args:
        path (str): The ``.onnx`` file.
        threads (int, optional): Intra-op threads. Defaults to 1.
        optimization (str): Graph optimization level. Defaults to 'all'.

    Returns:
        Counter: ``op_type`` -> count.
    """
    graph = optimized_graph(path, threads, optimization)
    return Counter(node.op_type for node in graph.node)
