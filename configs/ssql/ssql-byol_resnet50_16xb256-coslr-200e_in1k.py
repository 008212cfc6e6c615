# SSQL-BYOL, ResNet-50, ImageNet-1k: mmpretrain's BYOL recipe (LARS, batch
# 4096 = 16 x 256, 200 epochs, SyncBN) with SSQL on the online encoder;
# weights 2-8 bit and activations 4-8 bit drawn per iteration. Its float
# baseline is mmpretrain's config itself.
_base_ = 'mmpretrain::byol/byol_resnet50_16xb256-coslr-200e_in1k.py'
custom_imports = dict(imports=['ssql_mm'], allow_failed_imports=False)

model = dict(
    type='SSQLBYOL',
    quant_cfg=dict(w_bits=4, a_bits=4, placement='integer'))

# Package-scoped bases tag collate_fn with a scope the function registry
# cannot take; give the plain function.
train_dataloader = dict(
    collate_fn=dict(_delete_=True, type='default_collate'))

custom_hooks = [
    dict(type='QuantHook', w_bits_range=(2, 8), a_bits_range=(4, 8)),
]
log_processor = dict(custom_cfg=[
    dict(data_src='w_bit', method_name='current'),
    dict(data_src='a_bit', method_name='current'),
])
