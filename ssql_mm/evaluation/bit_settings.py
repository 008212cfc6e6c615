"""Bit-width settings of a sweep, written ``fp`` or ``W/A`` on the command line."""
from dataclasses import dataclass
from typing import List, Optional, Sequence

from ssql_mm.quantization import MAX_BITS, MIN_BITS, check_bits

__all__ = [
    'BitSetting', 'PAPER_BIT_SETTINGS', 'parse_bit_setting',
    'parse_bit_settings'
]

FLOAT_NAMES = ('fp', 'float', '0/0')
# The settings of the paper's tables, in their column order: the default of
# a sweep and the column order of the model-zoo table.
PAPER_BIT_SETTINGS = ('fp', '8/8', '6/6', '5/5', '4/4', '3/3', '2/4')


@dataclass(frozen=True)
class BitSetting:
    """One evaluation setting: weight and activation bit-widths.

    Args:
        w_bits (int, optional): Weight bits of the convs that follow the
            model-wide setting; None for float.
        a_bits (int, optional): Activation bits; None for float.
    """
    w_bits: Optional[int]
    a_bits: Optional[int]

    @property
    def is_float(self) -> bool:
        """Whether nothing is quantized."""
        return self.w_bits is None and self.a_bits is None

    @property
    def name(self) -> str:
        """``'FP'`` or ``'<w>w<a>a'`` (``'fp'`` for a float half)."""
        if self.is_float:
            return 'FP'
        w = 'fp' if self.w_bits is None else self.w_bits
        a = 'fp' if self.a_bits is None else self.a_bits
        return f'{w}w{a}a'


def parse_bit_setting(text: str) -> BitSetting:
    """Parse ``'fp'`` or ``'W/A'`` (e.g. ``'4/4'``, ``'2/4'``, ``'8/0'``).

    A 0 on either side means that side stays float.

    Args:
        text (str): The setting.

    Returns:
        BitSetting: The parsed setting.
    """
    raw = str(text).strip().lower()
    if raw in FLOAT_NAMES:
        return BitSetting(None, None)
    parts = raw.split('/')
    hint = (f"Write bit settings as 'fp' or 'W/A' with integers in "
            f'[{MIN_BITS}, {MAX_BITS}] (0 = float), e.g. 8/8 4/4 2/4.')
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f'Unknown bit setting {text!r}. {hint}')
    try:
        w_bits = check_bits(int(parts[0]), 'weight bits')
        a_bits = check_bits(int(parts[1]), 'activation bits')
    except ValueError as err:
        raise ValueError(f'Bad bit setting {text!r}: {err} {hint}') from None
    return BitSetting(w_bits, a_bits)


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
