from .ssql_simsiam import SSQLSimSiam, build_quant_encoder

__all__ = ['SSQLSimSiam', 'build_quant_encoder']
