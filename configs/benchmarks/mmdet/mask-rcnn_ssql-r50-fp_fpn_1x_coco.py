# Mask R-CNN R50-FPN 1x COCO with an SSQL ResNet-50 backbone in float.
# Also the PTQ entry point: train this config, then test it at chosen bits
#   --cfg-options model.backbone.w_bits=4 model.backbone.a_bits=4
# (QuantCalibrationHook measures the ranges on the loaded weights).
_base_ = [
    'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    './_base_/ssql-r50_backbone.py',
]
model = dict(backbone={{_base_.ssql_backbone}})
