r"""Fake quantizers: quantize-dequantize in the forward pass, straight-through backward.

Weights are quantized symmetrically per output channel:

.. math::
    m_c = \max(|\min_c w|, |\max_c w|), \quad s_c = \frac{m_c}{(2^b - 1) / 2},\quad
    \hat w = s_c \cdot \mathrm{clamp}(\mathrm{round}(w / s_c), -2^{b-1}, 2^{b-1} - 1).

Activations are quantized asymmetrically per tensor from a recorded range
:math:`[\min, \max]`:

.. math::
    s = \frac{\max - \min}{2^b - 1},\quad z = -\mathrm{round}(\min / s),\quad
    \hat x = (\mathrm{clamp}(\mathrm{round}(x / s) + z, 0, 2^b - 1) - z) \cdot s.

``round`` is round-half-to-even, applied to ``x * (1 / s)`` as in torch's
fused kernels. Weights use the fused ``torch.fake_quantize_per_channel_affine``;
activations use :func:`fake_quantize_per_tensor`, which gives bit-identical
values and gradients to ``torch.fake_quantize_per_tensor_affine`` but runs as
a few vectorised, multi-threaded tensor ops on CPU (torch's fused per-tensor
CPU kernel is a scalar loop, several times slower: it was the largest cost of
an SSQL step besides the convolutions). The backward is the straight-through
estimator with zero gradient where the code was clamped. Scales are treated
as constants (no gradient through ``max|w|`` or the range).

Deviation from the official SSQL code: the activation range is widened to
contain 0 (``min <= 0 <= max``), as in torch.ao, so that the zero point is an
integer code inside ``[0, 2^b - 1]`` (which the fused kernel requires). For
post-ReLU tensors (``min = 0``) both definitions agree.

Degenerate ranges never produce NaN or inf: a weight channel that is all zero
keeps its values (zero) while the other channels are quantized; an activation
range of zero width returns the input unchanged, as in the official code.
"""
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor, nn

from .observers import MinMaxObserver, Observer, minmax_per_channel

__all__ = [
    'MIN_BITS', 'MAX_BITS', 'QuantMode', 'check_bits', 'weight_qparams',
    'activation_qparams', 'fake_quantize_weight', 'fake_quantize_per_tensor',
    'fake_quantize_activation',
    'WeightFakeQuantize', 'ActivationFakeQuantize'
]

MIN_BITS = 2
MAX_BITS = 16
# ``clip(weight, bits, ch_axis)``: per-channel clipping values of a weight.
WeightClip = Callable[[Tensor, int, int], Tensor]
# Smallest scale whose reciprocal is still finite in float32.
_TINY = torch.finfo(torch.float32).tiny


class QuantMode:
    """The modes every fake quantizer can be in.

    - ``FLOAT``: identity; nothing is recorded.
    - ``OBSERVE``: identity; activation quantizers record their input range.
    - ``QUANTIZE``: fake-quantize at the current bit-width with the recorded range.
    """
    FLOAT = 'float'
    OBSERVE = 'observe'
    QUANTIZE = 'quantize'
    ALL = (FLOAT, OBSERVE, QUANTIZE)


def check_bits(bits: Optional[int], name: str = 'bits') -> Optional[int]:
    """Validate a bit-width; 0 and None both mean "float".

    Args:
        bits (int, optional): The bit-width.
        name (str): How the value is called in error messages.
            Defaults to 'bits'.

    Returns:
        int or None: ``bits``, or None for float.
    """
    if bits is None or (isinstance(bits, int) and not isinstance(bits, bool)
                        and bits == 0):
        return None
    if not isinstance(bits, int) or isinstance(bits, bool):
        raise TypeError(f'{name} must be an int or None, got {bits!r} '
                        f'({type(bits).__name__}).')
    if not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(
            f'{name}={bits} is not supported: use an integer in '
            f'[{MIN_BITS}, {MAX_BITS}], or 0/None for float.')
    return bits


def weight_qparams(weight: Tensor, bits: int, ch_axis: int = 0,
                   max_abs: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """Symmetric per-channel scale and (zero) zero point of a weight.

    Args:
        weight (Tensor): The float weight.
        bits (int): Bit-width.
        ch_axis (int): The output-channel axis. Defaults to 0.
        max_abs (Tensor, optional): Per-channel clipping value ``m_c``
            (e.g. chosen by an MSE search). Defaults to None:
            ``max |w_c|``.

    Returns:
        tuple[Tensor, Tensor]: float32 scales and int32 zero points, one per
        channel. All-zero channels get scale 1 (their values stay zero).
    """
    if max_abs is None:
        low, high = minmax_per_channel(weight, ch_axis)
        max_abs = torch.maximum(low.abs(), high.abs())
    max_abs = max_abs.float()
    scale = max_abs / ((2**bits - 1) / 2)
    scale = torch.where(scale > _TINY, scale, torch.ones_like(scale))
    return scale, torch.zeros_like(scale, dtype=torch.int32)


def activation_qparams(min_val: Tensor, max_val: Tensor,
                       bits: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Asymmetric per-tensor scale and zero point from a range.

    Args:
        min_val (Tensor): Recorded minimum (0-dim).
        max_val (Tensor): Recorded maximum (0-dim).
        bits (int): Bit-width.

    Returns:
        tuple[Tensor, Tensor, Tensor]: float32 scale, int32 zero point and a
        bool flag that is True when the range has zero width (then the scale
        returned is 1 and the input must be passed through unchanged).
    """
    qmax = 2**bits - 1
    min_val = torch.clamp(min_val.float(), max=0.)
    max_val = torch.clamp(max_val.float(), min=0.)
    scale = (max_val - min_val) / qmax
    degenerate = scale <= _TINY
    scale = torch.where(degenerate, torch.ones_like(scale), scale)
    zero_point = torch.clamp(torch.round(-min_val / scale), 0, qmax)
    return scale, zero_point.to(torch.int32), degenerate


def fake_quantize_weight(weight: Tensor, bits: int, ch_axis: int = 0,
                         max_abs: Optional[Tensor] = None) -> Tensor:
    """Quantize-dequantize a weight symmetrically per output channel.

    Args:
        weight (Tensor): The float weight.
        bits (int): Bit-width, at least 2.
        ch_axis (int): The output-channel axis. Defaults to 0.
        max_abs (Tensor, optional): Per-channel clipping value; values
            beyond it saturate. Defaults to None: ``max |w_c|``.

    Returns:
        Tensor: The fake-quantized weight (straight-through gradient).
    """
    scale, zero_point = weight_qparams(weight, bits, ch_axis, max_abs)
    return torch.fake_quantize_per_channel_affine(weight, scale, zero_point,
                                                  ch_axis, -2**(bits - 1),
                                                  2**(bits - 1) - 1)


class _PerTensorFakeQuantize(torch.autograd.Function):
    """``clamp(round(x * inv_scale), low, high) * scale`` with a
    straight-through gradient masked where the code was clamped."""

    @staticmethod
    def forward(ctx, x: Tensor, inv_scale: Tensor, scale: Tensor, low: float,
                high: float) -> Tensor:
        codes = torch.mul(x, inv_scale).round_()
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(codes.ge(low).logical_and_(codes.le(high)))
        return codes.clamp_(low, high).mul_(scale)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (inside, ) = ctx.saved_tensors
        return torch.where(inside, grad, grad.new_zeros(())), None, None, \
            None, None


def fake_quantize_per_tensor(x: Tensor, scale: Tensor, zero_point: Tensor,
                             quant_max: int) -> Tensor:
    """``torch.fake_quantize_per_tensor_affine(x, scale, zero_point, 0,
    quant_max)``, bit-identical in value and gradient, faster on CPU.

    With an integer zero point ``z``, ``clamp(round(x / s) + z, 0, q) - z``
    equals ``clamp(round(x / s), -z, q - z)``, so the zero point folds into
    the clamp bounds. Other devices and dtypes use torch's fused kernel.

    Args:
        x (Tensor): The activation.
        scale (Tensor): float32 scale (0-dim).
        zero_point (Tensor): int32 zero point (0-dim), in ``[0, quant_max]``.
        quant_max (int): Largest code, ``2^b - 1``.

    Returns:
        Tensor: The fake-quantized activation.
    """
    if x.device.type != 'cpu' or x.dtype != torch.float32:
        return torch.fake_quantize_per_tensor_affine(x, scale, zero_point, 0,
                                                     quant_max)
    z = float(zero_point)
    return _PerTensorFakeQuantize.apply(x, torch.reciprocal(scale), scale,
                                        -z, quant_max - z)


def fake_quantize_activation(x: Tensor, min_val: Tensor, max_val: Tensor,
                             bits: int) -> Tensor:
    """Quantize-dequantize an activation asymmetrically per tensor.

    Args:
        x (Tensor): The activation.
        min_val (Tensor): Range minimum (0-dim).
        max_val (Tensor): Range maximum (0-dim).
        bits (int): Bit-width, at least 2.

    Returns:
        Tensor: The fake-quantized activation (straight-through gradient);
        ``x`` itself where the range has zero width.
    """
    scale, zero_point, degenerate = activation_qparams(min_val, max_val, bits)
    out = fake_quantize_per_tensor(x, scale, zero_point, 2**bits - 1)
    return torch.where(degenerate, x, out)


class _FakeQuantize(nn.Module):
    """State shared by weight and activation fake quantizers.

    Quantization parameters are cached while they cannot change (same range,
    same bits, same weight version); switching the mode clears the cache.

    Args:
        bits (int, optional): Bit-width; 0 or None means float.
            Defaults to None.
        fixed (bool): Whether the bit-width is pinned by a per-layer override,
            so that model-wide :func:`set_bits` leaves it alone.
            Defaults to False.
    """

    def __init__(self, bits: Optional[int] = None, fixed: bool = False) -> None:
        super().__init__()
        self._bits = check_bits(bits)
        self.fixed = fixed
        self.mode = QuantMode.FLOAT
        self._cache: Optional[tuple] = None

    @property
    def bits(self) -> Optional[int]:
        """The bit-width, None for float."""
        return self._bits

    @bits.setter
    def bits(self, bits: Optional[int]) -> None:
        self._bits = check_bits(bits)
        self._cache = None

    def set_mode(self, mode: str) -> None:
        """Switch to one of :class:`QuantMode`'s modes."""
        if mode not in QuantMode.ALL:
            raise ValueError(f'Unknown quantization mode {mode!r}; '
                             f'expected one of {QuantMode.ALL}.')
        self.mode = mode
        self._cache = None

    @property
    def active(self) -> bool:
        """Whether the forward pass currently quantizes."""
        return self.mode == QuantMode.QUANTIZE and self._bits is not None

    def extra_repr(self) -> str:
        return (f'bits={self.bits}, fixed={self.fixed}, mode={self.mode!r}')


class WeightFakeQuantize(_FakeQuantize):
    """Symmetric per-output-channel fake quantizer of a weight.

    The range comes from the weight itself at every forward: ``max |w_c|``
    per channel, or the per-channel clipping value that ``clip`` chooses
    (set by calibration with an observer that searches weight ranges, such
    as MSE). Clipping values can instead be frozen
    (:meth:`freeze_max_abs`, done when a post-training quantization method
    writes its learned rounding into the weight): they are then used at
    every bit-width, whatever ``clip`` is, and saved in the state dict (as
    ``max_abs``) so the weight's integer codes survive a reload; an
    unfrozen quantizer adds no state-dict keys.

    Args:
        bits (int, optional): Bit-width; 0 or None means float.
            Defaults to None.
        fixed (bool): Pinned by a per-layer override. Defaults to False.
        ch_axis (int): The output-channel axis. Defaults to 0.
    """

    def __init__(self, bits: Optional[int] = None, fixed: bool = False,
                 ch_axis: int = 0) -> None:
        super().__init__(bits, fixed)
        self.ch_axis = ch_axis
        self.clip: Optional[WeightClip] = None
        self.register_buffer('max_abs', None, persistent=False)

    @property
    def frozen(self) -> bool:
        """Whether the clipping values are frozen."""
        return self.max_abs is not None

    def set_clip(self, clip: Optional[WeightClip]) -> None:
        """Choose how per-channel clipping values are found (frozen values,
        when there are any, take precedence).

        Args:
            clip (Callable, optional): ``clip(weight, bits, ch_axis)``
                returning one clipping value per channel, or None for
                ``max |w_c|``.
        """
        self.clip = clip
        self._cache = None

    def freeze_max_abs(self, max_abs: Optional[Tensor]) -> None:
        """Freeze the per-channel clipping values (None unfreezes).

        Args:
            max_abs (Tensor, optional): One positive value per output
                channel, or None to go back to ``clip`` / ``max |w_c|``.
        """
        self.max_abs = None if max_abs is None else max_abs.detach().float(
        ).clone()
        self._cache = None

    def clip_values(self, weight: Tensor) -> Optional[Tensor]:
        """The per-channel clipping values quantization uses for ``weight``
        at the current bits: the frozen ones, those ``clip`` chooses, or
        None for ``max |w_c|`` (see :func:`weight_qparams`).

        Args:
            weight (Tensor): The float weight.

        Returns:
            Tensor or None: float32 clipping values, one per channel.
        """
        if self.max_abs is not None:
            return self.max_abs.to(weight.device)
        if self.clip is None or self.bits is None:
            return None
        return self.clip(weight.detach(), self.bits, self.ch_axis)

    def forward(self, weight: Tensor) -> Tensor:
        if not self.active:
            return weight
        # Within one mode switch, views that share the weight share its
        # quantized copy (and its autograd graph).
        key = (weight._version, self.bits, torch.is_grad_enabled())
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, fake_quantize_weight(
                weight, self.bits, self.ch_axis, self.clip_values(weight)))
        return self._cache[1]

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.max_abs is not None:
            destination[prefix + 'max_abs'] = (
                self.max_abs if keep_vars else self.max_abs.detach())

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs):
        key = prefix + 'max_abs'
        if key in state_dict:
            self.freeze_max_abs(state_dict[key])
        # Hide the optional key from the strict key check.
        local = {k: v for k, v in state_dict.items() if k != key}
        super()._load_from_state_dict(local, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys,
                                      error_msgs)

    def extra_repr(self) -> str:
        return super().extra_repr() + f', frozen={self.frozen}'


class ActivationFakeQuantize(_FakeQuantize):
    """Asymmetric per-tensor fake quantizer of an activation.

    In ``observe`` mode it records the range of its inputs; in ``quantize``
    mode it uses the recorded range. A calibrated range can be frozen: it is
    then neither reset nor updated, and it is saved in the state dict (as
    ``min_val`` / ``max_val``) so a calibrated model can be restored; an
    unfrozen quantizer adds no state-dict keys. The observer is min/max
    unless calibration installs another (:meth:`set_observer`); ranges that
    depend on the bit-width (MSE, KL) are computed for the current bits when
    first read and when frozen.

    Args:
        bits (int, optional): Bit-width; 0 or None means float.
            Defaults to None.
        fixed (bool): Pinned by a per-layer override. Defaults to False.
    """

    def __init__(self, bits: Optional[int] = None, fixed: bool = False) -> None:
        super().__init__(bits, fixed)
        self.observer: Observer = MinMaxObserver()
        self.frozen = False

    def set_observer(self, observer: Observer) -> None:
        """Replace the observer (and forget the range recorded so far).

        Args:
            observer (Observer): The new observer.
        """
        if self.frozen:
            raise RuntimeError('Cannot replace the observer of a frozen '
                               'activation range; unfreeze it first.')
        if not isinstance(observer, Observer):
            raise TypeError('set_observer expects an Observer, got '
                            f'{type(observer).__name__}.')
        self.observer = observer.to(self.observer.min_val.device)
        self._cache = None

    @property
    def has_range(self) -> bool:
        """Whether a range has been recorded."""
        return self.observer.has_data

    def reset_range(self) -> None:
        """Forget the recorded range, unless it is frozen."""
        if not self.frozen:
            self.observer.reset()
            self._cache = None

    def freeze(self, frozen: bool = True) -> None:
        """Freeze (or unfreeze) the recorded range.

        Args:
            frozen (bool): Whether to freeze. Defaults to True.
        """
        if frozen and not self.has_range:
            raise RuntimeError('Cannot freeze an activation range that was '
                               'never observed: run calibration first.')
        if frozen and not self.frozen:
            self.observer.calculate_range(self.bits)
            self._cache = None
        self.frozen = frozen

    def set_range(self, min_val: Tensor, max_val: Tensor) -> None:
        """Set the range to ``[min_val, max_val]`` and freeze it (used to
        restore a calibration or to write a learned step size).

        Args:
            min_val (Tensor): Minimum (0-dim).
            max_val (Tensor): Maximum (0-dim).
        """
        self.observer.set_range(min_val, max_val)
        self.frozen = True
        self._cache = None

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == QuantMode.OBSERVE:
            if not self.frozen:
                self.observer(x)
                self._cache = None
            return x
        if not self.active:
            return x
        if self._cache is None:
            self._cache = self._qparams()
        scale, zero_point, degenerate = self._cache
        if degenerate:
            return x
        return fake_quantize_per_tensor(x, scale, zero_point,
                                        2**self.bits - 1)

    def _qparams(self) -> Tuple[Tensor, Tensor, bool]:
        if not self.has_range:
            raise RuntimeError(
                'Activation range was never measured for this layer. Run a '
                'float pass in observe mode first (ssql_mm.quantization.'
                'observing) or calibrate the model '
                '(ssql_mm.quantization.calibrate / QuantCalibrationHook).')
        if not self.frozen:
            self.observer.calculate_range(self.bits)
        scale, zero_point, degenerate = activation_qparams(
            self.observer.min_val, self.observer.max_val, self.bits)
        # One host read per range (not per forward) decides the zero-width
        # case, so the quantized path stays a single fused kernel.
        return scale, zero_point, bool(degenerate)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.frozen:
            for key in ('min_val', 'max_val'):
                value = getattr(self.observer, key)
                destination[prefix + key] = value if keep_vars else value.detach()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs):
        keys = (prefix + 'min_val', prefix + 'max_val')
        if all(key in state_dict for key in keys):
            self.set_range(state_dict[keys[0]], state_dict[keys[1]])
        # Hide the optional range keys from the strict key check.
        local = {k: v for k, v in state_dict.items() if k not in keys}
        super()._load_from_state_dict(local, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys,
                                      error_msgs)

    def extra_repr(self) -> str:
        return super().extra_repr() + f', frozen={self.frozen}'
