"""Bit settings of a sweep: see :mod:`ssql_mm.models.bit_setting`, their
home (re-exported here for existing imports)."""
from ssql_mm.models.bit_setting import (PAPER_BIT_SETTINGS, BitSetting,
                                        parse_bit_setting, parse_bit_settings)

__all__ = [
    'BitSetting', 'PAPER_BIT_SETTINGS', 'parse_bit_setting',
    'parse_bit_settings'
]
