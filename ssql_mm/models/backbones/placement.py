"""Where the activation quantizers of a ResNet sit around its residual additions.

One set of weights, three quantized networks:

- ``inputs``: every conv quantizes its own input (what an integer kernel
  consumes); the identity shortcut adds the *float* block input, so
  quantization noise never travels along the identity path.
- ``paper``: the official SSQL code's. Each residual block quantizes its
  output (after the addition and ReLU) and that quantized tensor is both the
  next block's conv input and its identity shortcut; the stem output is
  quantized at 8 bits; the last conv of each block and the downsample conv
  keep float outputs, so every addition is float + quantized.
- ``integer``: ``paper`` plus those two pre-addition outputs quantized at the
  activation bits, so both operands of every addition are quantized: the
  network an integer runtime executes (every conv reads and writes integer
  codes; every addition is an integer addition).

Weights are quantized the same way in all three (stem 8-bit, the others at
the sampled bits), and the projector's linears keep 8-bit weights. Under
``inputs`` the projector quantizes its (pooled) input at the activation bits;
under ``paper`` and ``integer`` it reads the pooled quantized block output,
as the official code does. The placement adds no state-dict key: a
checkpoint trained under one placement loads and is evaluated under another.

``integer`` is the project's choice (:data:`DEFAULT_PLACEMENT`): the shipped
configs and the model zoo use it, and the tools use it for float checkpoints.
It is the network an integer runtime runs fast, and SSQL trained with it
keeps its float accuracy (``docs/design.md`` gives the numbers). A quantized
model built without a placement gets ``inputs`` (:data:`LEGACY_PLACEMENT`),
the network before the option existed, so configs and checkpoints that name
none keep their meaning.
"""
from typing import Dict, List, Optional, Type

import torch.utils.checkpoint as cp
from mmpretrain.models.backbones.resnet import BasicBlock, Bottleneck
from torch import Tensor, nn

from ssql_mm.quantization import (ActivationFakeQuantize,
                                  paper_backbone_overrides,
                                  paper_neck_overrides, quant_layers)
from ssql_mm.quantization.presets import PROJECTOR_W_BITS, STEM_BITS

__all__ = [
    'PLACEMENTS', 'DEFAULT_PLACEMENT', 'LEGACY_PLACEMENT', 'check_placement',
    'QuantBlockMixin', 'QuantBasicBlock', 'QuantBottleneck', 'QUANT_BLOCKS', 'place_quantizers',
    'placement_overrides', 'neck_placement_overrides'
]

PLACEMENTS = ('inputs', 'paper', 'integer')
DEFAULT_PLACEMENT = 'integer'
LEGACY_PLACEMENT = 'inputs'
BLOCK_QUANTIZERS = ('input_quant', 'branch_quant', 'shortcut_quant',
                    'output_quant')


def check_placement(placement: Optional[str]) -> str:
    """Validate a placement name; None means :data:`LEGACY_PLACEMENT` (a
    quantized model that names no placement).

    Args:
        placement (str, optional): ``'inputs'``, ``'paper'`` or
            ``'integer'``.

    Returns:
        str: The placement.
    """
    if placement is None:
        return LEGACY_PLACEMENT
    if placement not in PLACEMENTS:
        raise ValueError(f'Unknown quantizer placement {placement!r}; use one '
                         f'of {", ".join(PLACEMENTS)}.')
    return placement


class QuantBlockMixin:
    """A residual block with activation quantizers around its addition.

    - ``input_quant``: the block input, read by the first conv, the
      downsample conv and the identity path (active only where the input is
      not already quantized: the first block, which reads the stem);
    - ``branch_quant``: the residual branch output after its last BatchNorm;
    - ``shortcut_quant``: the downsample output;
    - ``output_quant``: the block output after the addition and ReLU.

    Which of them act, at which bits, is set by :func:`placement_overrides`.
    """

    downsample: Optional[nn.Module]
    drop_path: nn.Module
    relu: nn.Module
    with_cp: bool

    def _init_block_quantizers(self) -> None:
        for name in BLOCK_QUANTIZERS:
            setattr(self, name, ActivationFakeQuantize())

    @classmethod
    def from_float(cls, block: nn.Module) -> 'QuantBlockMixin':
        """The quantized twin of ``block``, sharing its sub-modules.

        Args:
            block (BasicBlock | Bottleneck): The mmpretrain block.

        Returns:
            QuantBasicBlock | QuantBottleneck: The twin; its quantizers are
            float until bits are set.
        """
        twin = cls.__new__(cls)
        twin.__dict__.update(block.__dict__)
        twin._parameters = dict(block._parameters)
        twin._buffers = dict(block._buffers)
        twin._modules = dict(block._modules)
        twin._init_block_quantizers()
        return twin

    def _branch(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _add(self, x: Tensor) -> Tensor:
        out = self.drop_path(self.branch_quant(self._branch(x)))
        identity = x if self.downsample is None else self.shortcut_quant(
            self.downsample(x))
        return out + identity

    def forward(self, x: Tensor) -> Tensor:
        x = self.input_quant(x)
        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(self._add, x, use_reentrant=False)
        else:
            out = self._add(x)
        return self.output_quant(self.relu(out))


class QuantBasicBlock(QuantBlockMixin, BasicBlock):
    """mmpretrain ``BasicBlock`` with quantizers around its addition.

    Build it with :meth:`QuantBlockMixin.from_float`.
    """

    def _branch(self, x: Tensor) -> Tensor:
        out = self.relu(self.norm1(self.conv1(x)))
        return self.norm2(self.conv2(out))


class QuantBottleneck(QuantBlockMixin, Bottleneck):
    """mmpretrain ``Bottleneck`` with quantizers around its addition.

    Build it with :meth:`QuantBlockMixin.from_float`.
    """

    def _branch(self, x: Tensor) -> Tensor:
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.relu(self.norm2(self.conv2(out)))
        return self.norm3(self.conv3(out))


QUANT_BLOCKS: Dict[Type[nn.Module], Type[QuantBlockMixin]] = {
    BasicBlock: QuantBasicBlock,
    Bottleneck: QuantBottleneck,
}
"""mmpretrain residual block class to its quantized twin."""


def _blocks(model: nn.Module) -> List[str]:
    return [
        name for name, module in model.named_modules()
        if isinstance(module, QuantBlockMixin)
    ]


def place_quantizers(backbone: nn.Module, placement: str) -> None:
    """Give ``backbone``'s residual blocks the quantizers ``placement``
    needs, in place (``inputs`` needs none).

    Args:
        backbone (nn.Module): An mmpretrain ResNet.
        placement (str): See :data:`PLACEMENTS`.
    """
    if check_placement(placement) == 'inputs':
        return
    swapped = 0
    for parent in list(backbone.modules()):
        for child_name, child in list(parent.named_children()):
            twin = QUANT_BLOCKS.get(type(child))
            if twin is not None:
                setattr(parent, child_name, twin.from_float(child))
                swapped += 1
    if swapped == 0 and not _blocks(backbone):
        raise ValueError(f'Placement {placement!r} needs mmpretrain residual '
                         'blocks (BasicBlock / Bottleneck); this backbone has '
                         "none. Use placement='inputs'.")


def placement_overrides(backbone: nn.Module, placement: str) -> List[dict]:
    """The paper's bit assignment on a quantized ResNet under ``placement``.

    Stem weights 8-bit and the image float in every placement. ``inputs``:
    see :func:`~ssql_mm.quantization.paper_backbone_overrides`. ``paper`` /
    ``integer``: the stem output (the first block's input) 8-bit; the convs
    that read a block input (first conv, downsample conv) read it already
    quantized; block outputs and inner conv inputs at the activation bits;
    under ``paper`` the branch and downsample outputs float, under
    ``integer`` at the activation bits.

    Args:
        backbone (nn.Module): A ResNet whose convs are quantized and whose
            blocks went through :func:`place_quantizers`.
        placement (str): See :data:`PLACEMENTS`.

    Returns:
        list[dict]: Overrides for ``apply_overrides``.
    """
    if check_placement(placement) == 'inputs':
        return paper_backbone_overrides(backbone)
    blocks = _blocks(backbone)
    if not blocks:
        raise ValueError(f'Placement {placement!r}: the backbone has no '
                         'quantized residual block; call place_quantizers '
                         'first.')
    stem = [
        name for name, _ in quant_layers(backbone)
        if not name.startswith(tuple(f'{b}.' for b in blocks))
    ]
    overrides = [dict(name=stem[0], w_bits=STEM_BITS, a_bits=None)]
    overrides += [
        dict(name=name, w_bits=STEM_BITS, a_bits=STEM_BITS) for name in stem[1:]
    ]
    modules = dict(backbone.named_modules())
    for index, block in enumerate(blocks):
        overrides.append(dict(name=f'{block}.input_quant',
                              a_bits=STEM_BITS if index == 0 else None))
        overrides.append(dict(name=f'{block}.conv1', a_bits=None))
        downsample = modules[block].downsample
        for i, layer in enumerate(downsample or ()):
            name = f'{block}.downsample.{i}'
            if isinstance(layer, nn.Conv2d) and i == 0:
                overrides.append(dict(name=name, a_bits=None))
            elif isinstance(layer, nn.Conv2d) and index == 0:
                # Behind a pooling (ResNetV1d) the conv quantizes the pooled
                # codes again, at the stem bits in the first block.
                overrides.append(dict(name=name, a_bits=STEM_BITS))
        pre_add_float = placement == 'paper'
        if pre_add_float:
            overrides.append(dict(name=f'{block}.branch_quant', a_bits=None))
        if pre_add_float or downsample is None:
            overrides.append(dict(name=f'{block}.shortcut_quant', a_bits=None))
    return overrides


def neck_placement_overrides(neck: nn.Module, placement: str) -> List[dict]:
    """The paper's assignment on a quantized projector under ``placement``.

    Args:
        neck (nn.Module): The projector whose linears are quantized.
        placement (str): See :data:`PLACEMENTS`.

    Returns:
        list[dict]: Overrides for ``apply_overrides``.
    """
    if check_placement(placement) == 'inputs':
        return paper_neck_overrides(neck)
    return [
        dict(name=name, w_bits=PROJECTOR_W_BITS, a_bits=None)
        for name, _ in quant_layers(neck)
    ]
