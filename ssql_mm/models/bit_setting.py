"""A bit setting: uniform (``fp``, ``W/A``) or per layer (``mixed:FILE``).

A uniform setting gives every quantizer that is not pinned the same weight
and activation bit-widths; the placement's pinned quantizers (stem weights
8-bit, the image float, ...) keep theirs. A per-layer setting is a uniform
*base* plus per-layer bits, applied as overrides on top of the pinned ones,
so a pinned quantizer changes only when the file names it. Its file (YAML,
or JSON, which YAML reads too)::

    base: 4/4              # the uniform setting of the quantizers not named
    placement: paper       # optional: the placement the names refer to
    layers:                # fnmatch patterns over quantizer names
      layer1.0.conv1: {w: 2, a: 8}     # a conv: weight and input bits
      layer1.0.output_quant: {a: 6}    # an activation quantizer of a block
      layer4.*: {w: 8}
    info: {...}            # optional, free-form (what made the file)

``w`` / ``a`` are integers in ``[MIN_BITS, MAX_BITS]``, or ``0`` / ``fp`` for
float; a side that is left out keeps what the base and the placement give.
Names are checked against the model when it is built.
"""
import fnmatch
import json
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import (Any, Dict, List, Mapping, Optional, Sequence, Tuple,
                    Union)

import yaml
from torch import nn

from ssql_mm.checkpoint import atomic_write_bytes
from ssql_mm.quantization import (MAX_BITS, MIN_BITS, apply_overrides,
                                  check_bits, free_activation_quantizers,
                                  quant_layers)
from .backbones.placement import PLACEMENTS, check_placement

__all__ = [
    'BitSetting', 'LayerBits', 'MIXED_PREFIX', 'PAPER_BIT_SETTINGS',
    'parse_bit_setting', 'parse_bit_settings', 'load_bit_setting',
    'save_bit_setting', 'bit_setting_from_dict', 'resolve_bit_setting',
    'quantizer_names'
]

FLOAT_NAMES = ('fp', 'float', '0/0')
MIXED_PREFIX = 'mixed:'
# The settings of the paper's tables, in their column order: the default of
# a sweep and the column order of the model-zoo table.
PAPER_BIT_SETTINGS = ('fp', '8/8', '6/6', '5/5', '4/4', '3/3', '2/4')
_FILE_KEYS = ('base', 'placement', 'layers', 'info')
_SIDES = ('w', 'a')
_UNIFORM_HINT = (f"Write bit settings as 'fp', 'W/A' with integers in "
                 f'[{MIN_BITS}, {MAX_BITS}] (0 = float), e.g. 8/8 4/4 2/4, '
                 f'or {MIXED_PREFIX}FILE for a per-layer bits file.')


@dataclass(frozen=True)
class LayerBits:
    """The bits a per-layer setting gives one layer or quantizer pattern.

    Args:
        name (str): ``fnmatch`` pattern over quantizer names: quantized
            layers (``'layer1.0.conv1'``; ``w`` is the weight, ``a`` the
            input) and activation quantizers outside layers
            (``'layer1.0.output_quant'``; ``a`` only).
        w (int, optional): Weight bits, 0 for float; None leaves the side
            as the base and the placement set it. Defaults to None.
        a (int, optional): Activation bits, the same way. Defaults to None.
    """
    name: str
    w: Optional[int] = None
    a: Optional[int] = None

    def override(self) -> dict:
        """The override for ``apply_overrides`` (0 pins a side to float)."""
        out: Dict[str, Any] = dict(name=self.name)
        if self.w is not None:
            out['w_bits'] = self.w
        if self.a is not None:
            out['a_bits'] = self.a
        return out

    def to_dict(self) -> Dict[str, Union[int, str]]:
        """``{'w': ..., 'a': ...}`` as a bits file writes it."""
        return {side: ('fp' if bits == 0 else bits)
                for side, bits in (('w', self.w), ('a', self.a))
                if bits is not None}


@dataclass(frozen=True)
class BitSetting:
    """One bit setting: uniform bit-widths, plus per-layer bits when mixed.

    Args:
        w_bits (int, optional): Weight bits of the quantizers that follow the
            model-wide setting; None for float.
        a_bits (int, optional): Activation bits; None for float.
        layers (tuple[LayerBits]): Per-layer bits, applied in order on top
            of the placement's pinned quantizers. Defaults to () (uniform).
        placement (str, optional): The placement ``layers`` refers to; a
            model built under another placement is refused. Defaults to
            None (any).
        label (str, optional): Name in reports (the bits file's name); not
            part of equality. Defaults to None.
    """
    w_bits: Optional[int]
    a_bits: Optional[int]
    layers: Tuple[LayerBits, ...] = ()
    placement: Optional[str] = None
    label: Optional[str] = field(default=None, compare=False)

    @property
    def is_mixed(self) -> bool:
        """Whether the setting has per-layer bits."""
        return bool(self.layers)

    @property
    def is_float(self) -> bool:
        """Whether nothing is quantized."""
        return (self.w_bits is None and self.a_bits is None and all(
            not layer.w and not layer.a for layer in self.layers))

    @property
    def base_text(self) -> str:
        """The uniform part as the tools take it: ``'fp'`` or ``'W/A'``
        (0 = float)."""
        if self.w_bits is None and self.a_bits is None:
            return 'fp'
        return f'{self.w_bits or 0}/{self.a_bits or 0}'

    @property
    def name(self) -> str:
        """``'FP'``, ``'<w>w<a>a'`` (``'fp'`` for a float half), or
        ``'mixed:<file name>'``."""
        if self.is_mixed or self.label:
            return self.label or f'{MIXED_PREFIX}{self.base_text}'
        if self.is_float:
            return 'FP'
        w = 'fp' if self.w_bits is None else self.w_bits
        a = 'fp' if self.a_bits is None else self.a_bits
        return f'{w}w{a}a'

    def overrides(self) -> List[dict]:
        """The per-layer bits as overrides for ``apply_overrides``."""
        return [layer.override() for layer in self.layers]

    def max_bits(self) -> int:
        """The widest bit-width the setting names (0 when all float)."""
        values = [self.w_bits or 0, self.a_bits or 0]
        values += [layer.w or 0 for layer in self.layers]
        values += [layer.a or 0 for layer in self.layers]
        return max(values)

    def check_placement(self, placement: str) -> None:
        """Refuse to apply the per-layer bits under another placement.

        Args:
            placement (str): The model's placement.
        """
        if self.placement is not None and self.placement != placement:
            raise ValueError(
                f'{self.name} names the quantizers of placement '
                f"'{self.placement}' but the model is built under "
                f"'{placement}'; build it with placement '{self.placement}' "
                f'(--placement {self.placement}) or search the bits again '
                f"under '{placement}'.")

    def apply(self, model: nn.Module) -> None:
        """Pin the per-layer bits on ``model`` (after its placement's
        overrides), checking every name first.

        Args:
            model (nn.Module): A quantized model.
        """
        targets = quantizer_names(model)
        for layer in self.layers:
            matched = fnmatch.filter(targets, layer.name)
            if not matched:
                sample = ', '.join(list(targets)[:8])
                raise ValueError(
                    f"{self.name}: layer '{layer.name}' matches no quantizer "
                    f'of this model (names look like: {sample}, ...); fix '
                    'the name in the file (python tools/mixed_precision.py '
                    'CKPT --list-layers prints them).')
            if layer.w is not None and not any(
                    targets[name] == 'layer' for name in matched):
                raise ValueError(
                    f"{self.name}: '{layer.name}' is an activation "
                    'quantizer and has no weight; give it a only '
                    '(e.g. {a: 8}).')
        apply_overrides(model, self.overrides())

    def to_dict(self) -> Dict[str, Any]:
        """The bits file's content (see the module docstring)."""
        data: Dict[str, Any] = dict(base=self.base_text)
        if self.placement is not None:
            data['placement'] = self.placement
        data['layers'] = {layer.name: layer.to_dict() for layer in self.layers}
        return data


def quantizer_names(model: nn.Module) -> Dict[str, str]:
    """Every name a per-layer setting may use on ``model``.

    Args:
        model (nn.Module): A quantized model.

    Returns:
        dict[str, str]: Name -> ``'layer'`` (a quantized conv / linear:
        weight and input bits) or ``'activation'`` (an activation quantizer
        outside a layer: ``a`` only), in module order.
    """
    names = {name: 'layer' for name, _ in quant_layers(model)}
    names.update((name, 'activation')
                 for name, _ in free_activation_quantizers(model))
    return names


def _uniform(text: str) -> Tuple[Optional[int], Optional[int]]:
    raw = str(text).strip().lower()
    if raw in FLOAT_NAMES:
        return None, None
    parts = raw.split('/')
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f'Unknown bit setting {text!r}. {_UNIFORM_HINT}')
    try:
        return (check_bits(int(parts[0]), 'weight bits'),
                check_bits(int(parts[1]), 'activation bits'))
    except ValueError as err:
        raise ValueError(
            f'Bad bit setting {text!r}: {err} {_UNIFORM_HINT}') from None


def _side_bits(value: Any, where: str) -> int:
    """A ``w`` / ``a`` value of a bits file: 0 for float, else the bits."""
    if isinstance(value, str) and value.strip().lower() in ('fp', 'float'):
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not (
            value == 0 or MIN_BITS <= value <= MAX_BITS):
        raise ValueError(
            f'{where} is {value!r}; use an integer in [{MIN_BITS}, '
            f'{MAX_BITS}], or 0 / fp for float.')
    return value


def _layer_bits(name: Any, spec: Any, source: str) -> LayerBits:
    where = f"{source}: layer '{name}'"
    if not isinstance(name, str) or not name:
        raise ValueError(f'{source}: layer names must be non-empty strings, '
                         f'got {name!r}.')
    if not isinstance(spec, Mapping):
        raise ValueError(f'{where} must map to {{w: BITS, a: BITS}}, got '
                         f'{spec!r}; e.g. {name}: {{w: 4, a: 8}}.')
    unknown = sorted(set(map(str, spec)) - set(_SIDES))
    if unknown or not spec:
        raise ValueError(f'{where} has keys {unknown or "none"}; give w '
                         '(weight bits) and/or a (activation bits), e.g. '
                         f'{name}: {{w: 4, a: 8}}.')
    return LayerBits(name, **{
        side: _side_bits(spec[side], f'{where} {side}')
        for side in _SIDES if side in spec
    })


def bit_setting_from_dict(
        data: Any,
        source: str = 'bit setting',
        default_base: Optional[Tuple[Optional[int], Optional[int]]] = None,
        label: Optional[str] = None) -> BitSetting:
    """Build a setting from a bits file's content.

    Args:
        data (dict): ``base``, ``placement``, ``layers``, ``info`` (see the
            module docstring).
        source (str): How the content is called in error messages.
            Defaults to 'bit setting'.
        default_base (tuple, optional): ``(w_bits, a_bits)`` used when
            ``data`` has no ``base``. Defaults to None: ``base`` is required.
        label (str, optional): The setting's name in reports. Defaults to
            None.

    Returns:
        BitSetting: The setting.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f'{source} must be a mapping with base, layers '
                         f'(and optionally placement, info), got '
                         f'{type(data).__name__}.')
    unknown = sorted(set(map(str, data)) - set(_FILE_KEYS))
    if unknown:
        raise ValueError(f'{source} has unknown key(s) {unknown}; allowed: '
                         f"{', '.join(_FILE_KEYS)}.")
    if 'base' in data:
        try:
            w_bits, a_bits = _uniform(data['base'])
        except ValueError as err:
            raise ValueError(f'{source}: base: {err}') from None
    elif default_base is not None:
        w_bits, a_bits = default_base
    else:
        raise ValueError(f"{source} has no 'base' (the uniform setting of "
                         "the quantizers it does not name); add e.g. "
                         "'base: 4/4'.")
    placement = data.get('placement')
    if placement is not None and placement not in PLACEMENTS:
        raise ValueError(f'{source}: unknown placement {placement!r}; use '
                         f"one of {', '.join(PLACEMENTS)}.")
    layers = data.get('layers') or {}
    if not isinstance(layers, Mapping):
        raise ValueError(f'{source}: layers must map layer names to '
                         '{w: BITS, a: BITS}, e.g. layer1.0.conv1: '
                         '{w: 4, a: 8}.')
    return BitSetting(
        w_bits, a_bits,
        tuple(_layer_bits(name, spec, source)
              for name, spec in layers.items()),
        None if placement is None else check_placement(placement), label)


def load_bit_setting(
        path: Union[str, os.PathLike],
        default_base: Optional[Tuple[Optional[int], Optional[int]]] = None
) -> BitSetting:
    """Read a bits file (YAML or JSON).

    Args:
        path (str | PathLike): The file.
        default_base (tuple, optional): See :func:`bit_setting_from_dict`.
            Defaults to None (the file must have a ``base``).

    Returns:
        BitSetting: The setting, labelled ``mixed:<file name>``.
    """
    path = os.fspath(path)
    source = f'Bits file {path}'
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{source} does not exist; pass a file written by '
            'tools/mixed_precision.py (or by hand, see docs/evaluation.md).')
    with open(path, encoding='utf-8') as f:
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as err:
            detail = ' '.join(str(err).split())[:200]
            raise ValueError(f'{source} is not valid YAML / JSON ({detail}); '
                             'fix the file.') from None
    label = MIXED_PREFIX + osp.splitext(osp.basename(path))[0]
    return bit_setting_from_dict(data, source, default_base, label)


def save_bit_setting(setting: BitSetting,
                     path: Union[str, os.PathLike],
                     info: Optional[dict] = None) -> None:
    """Write ``setting`` as a bits file, atomically: JSON for a ``.json``
    name, YAML otherwise.

    Args:
        setting (BitSetting): The setting.
        path (str | PathLike): The file.
        info (dict, optional): Free-form facts stored under ``info`` (what
            made the file); ignored when loading. Defaults to None.
    """
    data = setting.to_dict()
    if info:
        data['info'] = info
    if os.fspath(path).endswith('.json'):
        text = json.dumps(data, indent=2) + '\n'
    else:
        text = ('# ssql_mm bit setting: per-layer w / a bits (0 or fp = '
                'float) over a uniform base\n' +
                yaml.safe_dump(data, sort_keys=False, width=100))
    atomic_write_bytes(text.encode('utf-8'), path)


def parse_bit_setting(text: str) -> BitSetting:
    """Parse ``'fp'``, ``'W/A'`` (e.g. ``'4/4'``, ``'2/4'``, ``'8/0'``) or
    ``'mixed:FILE'``.

    A 0 on either side of ``W/A`` means that side stays float.

    Args:
        text (str): The setting.

    Returns:
        BitSetting: The parsed setting.
    """
    raw = str(text).strip()
    if raw.lower().startswith(MIXED_PREFIX):
        path = raw[len(MIXED_PREFIX):]
        if not path:
            raise ValueError(f'Bit setting {text!r} names no file; write '
                             f'{MIXED_PREFIX}FILE (a YAML / JSON bits file).')
        return load_bit_setting(path)
    return BitSetting(*_uniform(raw))


def parse_bit_settings(texts: Sequence[str]) -> List[BitSetting]:
    """Parse several settings, rejecting an empty list and duplicates.

    Args:
        texts (Sequence[str]): Settings as written on the command line.

    Returns:
        list[BitSetting]: The settings, in the given order.
    """
    if not texts:
        raise ValueError('No bit setting given.')
    settings = [parse_bit_setting(t) for t in texts]
    names = [s.name for s in settings]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f'Bit setting(s) given twice: {duplicates}.')
    return settings


MixedSpec = Union[None, str, os.PathLike, Mapping, BitSetting]


def resolve_bit_setting(w_bits: Optional[int], a_bits: Optional[int],
                        mixed: MixedSpec = None) -> BitSetting:
    """The setting a quantized backbone's arguments describe.

    Args:
        w_bits (int, optional): Uniform weight bits (0/None = float).
        a_bits (int, optional): Uniform activation bits.
        mixed (str | dict | BitSetting, optional): Per-layer bits: a bits
            file, its content as a dict, or a setting. Its ``base`` fills
            ``w_bits`` / ``a_bits`` when both are 0/None and must equal
            them otherwise. Defaults to None (uniform).

    Returns:
        BitSetting: The setting.
    """
    given = (check_bits(w_bits, 'w_bits'), check_bits(a_bits, 'a_bits'))
    if mixed is None:
        return BitSetting(*given)
    if isinstance(mixed, BitSetting):
        setting = mixed
    elif isinstance(mixed, Mapping):
        setting = bit_setting_from_dict(mixed, 'mixed', default_base=given,
                                        label=None)
    else:
        setting = load_bit_setting(mixed, default_base=given)
    if given != (None, None) and (setting.w_bits, setting.a_bits) != given:
        raise ValueError(
            f'w_bits={given[0] or 0}, a_bits={given[1] or 0} disagree with '
            f'the base {setting.base_text} of {setting.name}; give the '
            'uniform bits in one place (drop w_bits / a_bits or the base).')
    return setting
