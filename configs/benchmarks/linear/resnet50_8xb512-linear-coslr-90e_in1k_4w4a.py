# Linear evaluation of a self-supervised ResNet-50 on ImageNet at 4-bit
# weights and 4-bit activations: mmpretrain's SimSiam linear benchmark (LARS,
# batch 8 x 512, cosine, 90 epochs) with a frozen quantized backbone whose
# activation ranges are calibrated once on training images in float.
#
# Other bit-widths: --cfg-options model.backbone.w_bits=W model.backbone.a_bits=A
# (0 = float). The pretrained checkpoint:
# --cfg-options model.backbone.init_cfg.checkpoint=PATH
_base_ = 'mmpretrain::simsiam/benchmarks/resnet50_8xb512-linear-coslr-90e_in1k.py'
custom_imports = dict(imports=['ssql_mm'], allow_failed_imports=False)

w_bits = 4
a_bits = 4
checkpoint = ('work_dirs/ssql-simsiam_resnet50_8xb32-coslr-100e_in1k/'
              'epoch_100.pth')

model = dict(
    backbone=dict(
        type='QuantResNet',
        w_bits=w_bits,
        a_bits=a_bits,
        placement='integer',
        init_cfg=dict(checkpoint=checkpoint)))

custom_hooks = [
    dict(type='QuantCalibrationHook', num_batches=10, dataloader='train'),
]
