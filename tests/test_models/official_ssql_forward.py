"""The official SSQL quantized ResNet forward, written from its equations.

A test fixture, independent of ssql_mm's quantizers: the official code
fake-quantizes conv/linear weights (symmetric, per output channel) and the
*outputs* of conv(+BN+ReLU) modules and of residual blocks (asymmetric, per
tensor), with the CIFAR / ImageNet bit configuration:

- stem conv: weights 8-bit, its output (after BN and ReLU) 8-bit, the image
  float;
- block convs: weights at ``w``; the outputs of the inner convs (after BN
  and ReLU) at ``a``; the last conv of the block and the downsample conv
  float outputs (``a: 0``);
- block output (after the addition and ReLU) at ``a``; it is the next
  block's input *and* its identity shortcut.

Ranges are min/max of each quantized tensor in one float pass over the
calibration batch (the official observer). ``pre_add_bits`` additionally
quantizes the last conv and downsample outputs (the all-integer variant).
"""
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmpretrain.models.backbones import ResNet_CIFAR
from torch import Tensor, nn


def quantize_weight(w: Tensor, bits: int) -> Tensor:
    """Symmetric per-output-channel: s = max|w_c| / ((2^b - 1) / 2)."""
    m = w.abs().amax(dim=tuple(range(1, w.dim())), keepdim=True)
    s = m / ((2**bits - 1) / 2)
    q = torch.clamp(torch.round(w / s), -2**(bits - 1), 2**(bits - 1) - 1)
    return q * s


def quantize_activation(x: Tensor, low: Tensor, high: Tensor,
                        bits: int) -> Tensor:
    """Asymmetric per-tensor: s = (max - min) / (2^b - 1), zp = -round(min / s)."""
    s = (high - low) / (2**bits - 1)
    zp = -torch.round(low / s)
    q = torch.clamp(torch.round(x / s) + zp, 0, 2**bits - 1)
    return (q - zp) * s


class OfficialForward:
    """Runs an mmpretrain ResNet's weights through the official equations.

    Args:
        backbone (nn.Module): ResNet / ResNet_CIFAR in eval mode (its
            BatchNorms are used as plain eval-mode functions).
        w_bits (int): Block weight bits.
        a_bits (int): Activation bits.
        pre_add_bits (int, optional): Bits of the last-conv and downsample
            outputs; None (the official code) keeps them float.
    """

    def __init__(self, backbone: nn.Module, w_bits: int, a_bits: int,
                 pre_add_bits: Optional[int] = None) -> None:
        self.net = backbone
        self.w_bits, self.a_bits = w_bits, a_bits
        self.pre_add_bits = pre_add_bits
        self.ranges: Dict[int, List[Tensor]] = {}
        self._observe = True
        self._index = 0

    def _q(self, x: Tensor, bits: Optional[int]) -> Tensor:
        if bits is None:
            return x
        key = self._index
        self._index += 1
        if self._observe:
            self.ranges[key] = [x.min(), x.max()]
            return x
        return quantize_activation(x, *self.ranges[key], bits)

    def _conv(self, conv: nn.Conv2d, x: Tensor, w_bits: int) -> Tensor:
        weight = conv.weight if self._observe else quantize_weight(
            conv.weight, w_bits)
        return F.conv2d(x, weight, conv.bias, conv.stride, conv.padding,
                        conv.dilation, conv.groups)

    def _block(self, block: nn.Module, x: Tensor) -> Tensor:
        convs = [block.conv1, block.conv2] + (
            [block.conv3] if hasattr(block, 'conv3') else [])
        norms = [block.norm1, block.norm2] + (
            [block.norm3] if hasattr(block, 'conv3') else [])
        out = x
        for conv, norm in zip(convs[:-1], norms[:-1]):
            out = self._q(F.relu(norm(self._conv(conv, out, self.w_bits))),
                          self.a_bits)
        out = self._q(norms[-1](self._conv(convs[-1], out, self.w_bits)),
                      self.pre_add_bits)
        identity = x
        if block.downsample is not None:
            conv, norm = block.downsample
            identity = self._q(norm(self._conv(conv, x, self.w_bits)),
                               self.pre_add_bits)
        return self._q(F.relu(out + identity), self.a_bits)

    def _run(self, images: Tensor) -> Tensor:
        self._index = 0
        net = self.net
        x = self._q(F.relu(net.norm1(self._conv(net.conv1, images, 8))), 8)
        if not isinstance(net, ResNet_CIFAR):  # the CIFAR stem has no pool
            x = net.maxpool(x)
        for layer_name in net.res_layers:
            for block in getattr(net, layer_name):
                x = self._block(block, x)
        return x

    @torch.no_grad()
    def __call__(self, calib: Tensor, images: Tensor) -> Tensor:
        """Observe ranges on ``calib`` in float, then run ``images``
        quantized; returns the last block's (quantized) output."""
        self._observe = True
        self._run(calib)
        self._observe = False
        return self._run(images)
