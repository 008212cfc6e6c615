"""The paper's bit settings: one list for sweeps and the model-zoo table."""
from ssql_mm.apis.table import BIT_SETTINGS
from ssql_mm.evaluation.bit_settings import (PAPER_BIT_SETTINGS,
                                             parse_bit_settings)


def test_paper_settings_are_the_tables_columns_in_order():
    settings = parse_bit_settings(PAPER_BIT_SETTINGS)
    assert [(s.w_bits, s.a_bits) for s in settings] == [
        (None, None), (8, 8), (6, 6), (5, 5), (4, 4), (3, 3), (2, 4)]
    assert BIT_SETTINGS == ('FP', '8w8a', '6w6a', '5w5a', '4w4a', '3w3a',
                            '2w4a')
