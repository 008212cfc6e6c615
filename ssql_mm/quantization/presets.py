"""The paper's per-layer bit assignment, expressed as overrides.

SSQL (official code) quantizes conv/linear weights and the *outputs* of
conv(+BN+ReLU) modules: the stem at 8 bits, block-inner and block outputs at
the sampled activation bits, projector weights at 8 bits with float outputs,
the network input and the predictor never. ssql_mm quantizes each layer's
*input* instead (what an integer kernel consumes). The overrides below give
the same assignment:

- stem: first conv weights 8-bit, its input (the image) float; further stem
  convs (deep stem) weights and inputs 8-bit;
- the first block's convs that read the stem output (``layer1.0.conv1`` and
  the ``layer1.0`` downsample conv): inputs 8-bit;
- every other backbone conv: sampled weight and input bits;
- projector (neck) linears: weights 8-bit; the first one's input (the pooled
  last block output) at the sampled activation bits, later inputs float.

This is the ``inputs`` placement: the identity shortcut adds the float
block output, where the official code adds the quantized one, and the
projector input is quantized after global pooling rather than before. The
official placement (and an all-integer one) are built from these overrides
by ``ssql_mm.models.backbones.placement``.
"""
from typing import List

from torch import nn

from .convert import quant_layers

__all__ = ['paper_backbone_overrides', 'paper_neck_overrides']

STEM_BITS = 8
PROJECTOR_W_BITS = 8


def paper_backbone_overrides(backbone: nn.Module) -> List[dict]:
    """Overrides reproducing the paper's assignment on a quantized ResNet.

    Args:
        backbone (nn.Module): A ResNet (mmpretrain layout: stem convs, then
            ``layer1`` ... ``layer4``) whose convs are already quantized.

    Returns:
        list[dict]: Overrides for :func:`apply_overrides`.
    """
    names = [name for name, _ in quant_layers(backbone)]
    stem = [name for name in names if not name.startswith('layer')]
    if not stem:
        raise ValueError('paper_backbone_overrides expects a ResNet with a '
                         "stem conv before 'layer1'; found layers "
                         f'{names[:5]}. Pass explicit overrides instead.')
    overrides = [dict(name=stem[0], w_bits=STEM_BITS, a_bits=None)]
    overrides += [
        dict(name=name, w_bits=STEM_BITS, a_bits=STEM_BITS) for name in stem[1:]
    ]
    overrides += [
        dict(name=name, a_bits=STEM_BITS) for name in names
        if name == 'layer1.0.conv1' or name.startswith('layer1.0.downsample.')
    ]
    return overrides


def paper_neck_overrides(neck: nn.Module) -> List[dict]:
    """Overrides reproducing the paper's assignment on a quantized projector.

    Args:
        neck (nn.Module): The projector whose linears are already quantized.

    Returns:
        list[dict]: Overrides for :func:`apply_overrides`.
    """
    names = [name for name, _ in quant_layers(neck)]
    if not names:
        return []
    overrides = [dict(name=names[0], w_bits=PROJECTOR_W_BITS)]
    overrides += [
        dict(name=name, w_bits=PROJECTOR_W_BITS, a_bits=None)
        for name in names[1:]
    ]
    return overrides
