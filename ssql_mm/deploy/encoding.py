r"""The integers and scales that represent one fake-quantized layer.

What a quantized layer computes in PyTorch (``ssql_mm.quantization``) is
rewritten here as the numbers a QDQ graph stores:

- input (activation quantizer active): uint8 codes
  :math:`q_x = \mathrm{clamp}(\mathrm{round}(x / s_x) + z_x, 0, 2^{b_a} - 1)`
  with the scale and zero point of ``activation_qparams``;
- weight (weight quantizer active): int8 codes
  :math:`q_w \in [-2^{b_w - 1}, 2^{b_w - 1} - 1]` and one scale per output
  channel, read off the fake-quantized weight itself so the codes are those
  PyTorch uses (with the clipping values PyTorch uses: frozen by a PTQ
  reconstruction, chosen by an observer, or :math:`\max |w_c|`);
- a BatchNorm that directly follows a conv is folded into it. BN is a
  per-output-channel affine map :math:`y = g_c \cdot t + (\beta_c - \mu_c g_c)`
  with :math:`g_c = \gamma_c / \sqrt{\sigma^2_c + \epsilon}`, so for a
  quantized weight the factor goes into the per-channel scale
  (:math:`s_c g_c`) and the codes are untouched: the folded layer computes
  what conv-then-BN computes, up to float rounding. :math:`g_c` may be
  negative; the scale then is too.
- bias: when input and weight are both quantized, the bias is stored as
  int32 codes with scale :math:`s_x s_{w,c}` (what integer kernels add to
  their int32 accumulators); this rounds it by at most half of one
  accumulator step, the only place where the integer model departs from the
  fake-quantized one by construction. The export pipeline first moves the
  PyTorch model's bias onto that grid (:mod:`ssql_mm.deploy.bias_grid`), so
  the exported model is its reference.
"""
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np
import torch
from torch import nn

from ssql_mm.quantization import (ActivationFakeQuantize, QuantLayerMixin,
                                  WeightFakeQuantize, activation_qparams,
                                  fake_quantize_weight, weight_qparams)

__all__ = [
    'MAX_EXPORT_BITS', 'ActivationEncoding', 'LayerEncoding',
    'activation_encoding', 'encode_layer', 'quantize_bias'
]

# Codes are stored in (u)int8 tensors; wider codes would need (u)int16.
MAX_EXPORT_BITS = 8
_INT32 = np.iinfo(np.int32)


def _check_export_bits(bits: int, what: str, name: str) -> None:
    if bits > MAX_EXPORT_BITS:
        raise ValueError(
            f'{what} of layer {name!r} are {bits}-bit; the ONNX export '
            f'stores codes in 8-bit tensors and supports 2-{MAX_EXPORT_BITS} '
            'bits. Export at 8 bits or fewer (e.g. --bits 8/8).')


@dataclass
class ActivationEncoding:
    """Per-tensor asymmetric quantization of a layer input.

    Args:
        bits (int): Bit-width; codes lie in ``[0, 2**bits - 1]``.
        scale (float): The scale :math:`s_x`.
        zero_point (int): The zero point :math:`z_x`.
    """
    bits: int
    scale: float
    zero_point: int

    @property
    def qmax(self) -> int:
        """The largest code."""
        return 2**self.bits - 1

    @property
    def key(self) -> Tuple[int, float, int]:
        """Equal keys quantize a tensor identically."""
        return self.bits, self.scale, self.zero_point


@dataclass
class LayerEncoding:
    """A conv or linear layer (with its BatchNorm folded) as stored in ONNX.

    Args:
        name (str): Module name of the layer.
        weight (ndarray): float32 weight with BN folded in; what the graph
            stores when the weight is not quantized.
        bias (ndarray, optional): float32 bias with BN folded in.
        input (ActivationEncoding, optional): Input quantization; None when
            the input stays float.
        w_bits (int, optional): Weight bit-width; None when float.
        codes (ndarray, optional): int8 weight codes, same shape as
            ``weight``.
        weight_scale (ndarray, optional): float32 per-output-channel scale
            (BN factor included), ``(out_channels,)``.
        kernel_input (ActivationEncoding, optional): The codes the kernel
            reads: ``input``, or the quantization an upstream quantizer
            applied to the tensor (a block input under the ``paper`` /
            ``integer`` placements); it sets the bias scale.
        bias_codes (ndarray, optional): int32 bias codes with scale
            ``kernel_input.scale * weight_scale``; None where the bias stays
            float.
    """
    name: str
    weight: np.ndarray
    bias: Optional[np.ndarray] = None
    input: Optional[ActivationEncoding] = None
    w_bits: Optional[int] = None
    codes: Optional[np.ndarray] = None
    weight_scale: Optional[np.ndarray] = None
    kernel_input: Optional[ActivationEncoding] = None
    bias_codes: Optional[np.ndarray] = None

    @property
    def quantized(self) -> bool:
        """Whether the input or the weight is quantized."""
        return self.input is not None or self.codes is not None

    @property
    def bias_scale(self) -> Optional[np.ndarray]:
        """float32 scale of :attr:`bias_codes`, ``(C,)``; None without them."""
        if self.bias_codes is None:
            return None
        return _bias_scale(self.kernel_input.scale, self.weight_scale)

    @property
    def integer_bias(self) -> Optional[np.ndarray]:
        """The bias the graph adds (float32 ``bias_codes * bias_scale``);
        None where it stores no bias codes."""
        if self.bias_codes is None:
            return None
        return (self.bias_codes * self.bias_scale).astype(np.float32)


def activation_encoding(quantizer: ActivationFakeQuantize,
                        name: str) -> Optional[ActivationEncoding]:
    """The input quantization PyTorch applies now, or None if it applies none.

    Args:
        quantizer (ActivationFakeQuantize): The layer's input quantizer.
        name (str): Layer name, for error messages.

    Returns:
        ActivationEncoding | None: None when the quantizer is off (float
        mode or no bits) or its range has zero width (the fake quantizer
        then passes its input through).
    """
    if not quantizer.active:
        return None
    _check_export_bits(quantizer.bits, 'Activations', name)
    if not quantizer.has_range:
        raise ValueError(
            f'Layer {name!r} quantizes its input to {quantizer.bits} bits but '
            'has no activation range: the checkpoint holds no frozen ranges. '
            'Give calibration images (--calib-data) or export a calibrated '
            'checkpoint.')
    scale, zero_point, degenerate = activation_qparams(
        quantizer.observer.min_val, quantizer.observer.max_val,
        quantizer.bits)
    if bool(degenerate):
        return None
    return ActivationEncoding(quantizer.bits, float(scale),
                              int(zero_point))


def _bn_factors(bn: nn.BatchNorm2d) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-channel ``(g, shift)``: ``bn(t) = g * t + shift`` in eval mode."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(f'Cannot fold {bn}: it tracks no running statistics.')
    var, mean = bn.running_var.double(), bn.running_mean.double()
    gamma = (bn.weight.double() if bn.weight is not None else
             torch.ones_like(var))
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(var)
    g = gamma / torch.sqrt(var + bn.eps)
    return g, beta - mean * g


def _bias_scale(input_scale: float, weight_scale: np.ndarray) -> np.ndarray:
    return (np.float32(input_scale) * weight_scale.astype(np.float32)).astype(
        np.float32)


def quantize_bias(bias: np.ndarray, input_scale: float,
                  weight_scale: np.ndarray) -> Optional[np.ndarray]:
    """int32 bias codes with scale ``input_scale * weight_scale``.

    Args:
        bias (ndarray): float bias, ``(C,)``.
        input_scale (float): Scale of the input codes.
        weight_scale (ndarray): Per-channel weight scale, ``(C,)``.

    Returns:
        ndarray | None: int32 codes, or None when one would not fit in int32
        (a channel with a tiny weight scale and a large bias); the bias then
        stays float.
    """
    scale = _bias_scale(input_scale, weight_scale)
    codes = np.round(bias.astype(np.float64) / scale.astype(np.float64))
    if np.any(codes < _INT32.min) or np.any(codes > _INT32.max):
        return None
    return codes.astype(np.int32)


@torch.no_grad()
def encode_layer(name: str,
                 layer: Union[nn.Conv2d, nn.Linear],
                 bn: Optional[nn.BatchNorm2d] = None,
                 upstream: Optional[ActivationEncoding] = None
                 ) -> LayerEncoding:
    """Encode a (quantized or float) conv/linear layer and its following BN.

    Args:
        name (str): Module name, for the report and error messages.
        layer (nn.Conv2d | nn.Linear): The layer; a ``QConv2d`` / ``QLinear``
            is encoded as its quantizers act now.
        bn (nn.BatchNorm2d, optional): The BatchNorm applied directly to the
            layer's output, to fold in. Defaults to None.
        upstream (ActivationEncoding, optional): How the input tensor is
            already quantized when the layer's own input quantizer is off.
            Defaults to None (a float input).

    Returns:
        LayerEncoding: The layer's numbers.
    """
    weight = layer.weight.detach().float().cpu()
    out_channels = weight.shape[0]
    bias = (layer.bias.detach().double().cpu() if layer.bias is not None
            else None)
    if bn is not None:
        g, shift = _bn_factors(bn)
        g, shift = g.cpu(), shift.cpu()
        bias = shift if bias is None else bias * g + shift
    else:
        g = None

    enc = LayerEncoding(name, weight.numpy())
    w_quant: Optional[WeightFakeQuantize] = None
    if isinstance(layer, QuantLayerMixin):
        w_quant = layer.weight_quant
        enc.input = activation_encoding(layer.input_quant, name)

    if w_quant is not None and w_quant.active:
        _check_export_bits(w_quant.bits, 'Weights', name)
        bits = w_quant.bits
        max_abs = w_quant.clip_values(weight)
        scale, _ = weight_qparams(weight, bits, w_quant.ch_axis, max_abs)
        fq = fake_quantize_weight(weight, bits, w_quant.ch_axis, max_abs)
        shape = (-1, ) + (1, ) * (weight.dim() - 1)
        codes = torch.round(fq / scale.view(shape))
        codes = codes.clamp(-2**(bits - 1), 2**(bits - 1) - 1)
        w_scale = scale.double()
        if g is not None:
            w_scale = w_scale * g
        enc.w_bits = bits
        enc.codes = codes.to(torch.int8).numpy()
        enc.weight_scale = w_scale.float().numpy()
        enc.weight = (codes * w_scale.float().view(shape)).numpy()
    elif g is not None:
        shape = (-1, ) + (1, ) * (weight.dim() - 1)
        enc.weight = (weight.double() * g.view(shape)).float().numpy()

    enc.kernel_input = enc.input or upstream
    if bias is not None:
        enc.bias = bias.float().numpy().reshape(out_channels)
        if enc.kernel_input is not None and enc.codes is not None:
            enc.bias_codes = quantize_bias(enc.bias, enc.kernel_input.scale,
                                           enc.weight_scale)
    return enc
