# UPerNet, ADE20K 512x512, 160k.
# SSQL ResNet-50 backbone (deep stem, V1c) in float.
# Also the PTQ entry point: train this config, then test it at chosen bits
#   --cfg-options model.backbone.w_bits=4 model.backbone.a_bits=4
# (QuantCalibrationHook re-measures the ranges before testing).
# For a checkpoint pretrained with the plain 7x7 stem add
#   --cfg-options model.backbone.type=mmpretrain.QuantResNet
_base_ = 'mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py'

custom_imports = dict(imports=['ssql_mm'], allow_failed_imports=False)

# SSQL pretraining checkpoint (keys 'backbone.*'); override with
# --cfg-options model.backbone.init_cfg.checkpoint=PATH
ssql_checkpoint = 'checkpoints/ssql-simsiam_resnet50-v1c_in1k.pth'
norm_cfg = dict(type='SyncBN', requires_grad=True)

model = dict(
    # The upstream base loads open-mmlab://resnet50_v1c here.
    pretrained=None,
    backbone=dict(
        # Replaces the whole upstream backbone: mmseg's contract_dilation
        # (first block of a dilated stage at half dilation) has no
        # equivalent in mmpretrain's ResNet.
        _delete_=True,
        type='mmpretrain.QuantResNetV1c',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        strides=(1, 2, 2, 2),
        dilations=(1, 1, 1, 1),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        w_bits=0,
        a_bits=0,
        init_cfg=dict(
            type='Pretrained', checkpoint=ssql_checkpoint,
            prefix='backbone.')))

# Recalibrate before every val/test so that PTQ at any --cfg-options bits
# measures ranges on the final weights (a no-op for the float model).
custom_hooks = [
    dict(
        type='mmpretrain.QuantCalibrationHook',
        num_batches=10,
        dataloader='train',
        recalibrate=True)
]
