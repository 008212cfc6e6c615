# SSQL-SimSiam, ResNet-50, ImageNet-1k: the paper's settings (100 epochs,
# batch 256 = 8 x 32, SGD lr 0.05, momentum 0.9, wd 1e-4, cosine, SyncBN,
# projector 2048, predictor hidden 512), weights 2-8 bit and activations
# 4-8 bit drawn per iteration.
_base_ = 'mmpretrain::simsiam/simsiam_resnet50_8xb32-coslr-100e_in1k.py'
custom_imports = dict(imports=['ssql_mm'], allow_failed_imports=False)

model = dict(
    type='SSQLSimSiam',
    quant_cfg=dict(w_bits=4, a_bits=4, placement='integer'))

# Package-scoped bases tag collate_fn with a scope the function registry
# cannot take; give the plain function.
train_dataloader = dict(
    collate_fn=dict(_delete_=True, type='default_collate'))

lr = 0.05
custom_hooks = [
    dict(type='SimSiamHook', priority='HIGH', fix_pred_lr=True, lr=lr),
    dict(type='QuantHook', w_bits_range=(2, 8), a_bits_range=(4, 8)),
]
log_processor = dict(custom_cfg=[
    dict(data_src='w_bit', method_name='current'),
    dict(data_src='a_bit', method_name='current'),
])
