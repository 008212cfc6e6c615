# Mask R-CNN R50-FPN 1x COCO with an SSQL ResNet-50 backbone in float.
# Also the PTQ entry point: train this config, then test it at chosen bits
#   --cfg-options model.backbone.w_bits=4 model.backbone.a_bits=4
# (QuantCalibrationHook re-measures the ranges before testing).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['ssql_mm'], allow_failed_imports=False)

# SSQL pretraining checkpoint (keys 'backbone.*'); override with
# --cfg-options model.backbone.init_cfg.checkpoint=PATH
ssql_checkpoint = 'checkpoints/ssql-simsiam_resnet50_in1k.pth'

model = dict(
    backbone=dict(
        type='mmpretrain.QuantResNet',
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
