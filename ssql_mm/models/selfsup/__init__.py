from .ssql_base import FloatEncoder, SSQLMixin, build_quant_encoder
from .ssql_byol import SSQLBYOL
from .ssql_mocov2 import SSQLMoCoV2
from .ssql_simsiam import SSQLSimSiam

__all__ = [
    'SSQLMixin', 'FloatEncoder', 'build_quant_encoder', 'SSQLSimSiam',
    'SSQLBYOL', 'SSQLMoCoV2'
]
