# FCN-d8, VOC12aug 512x512, 20k.
# SSQL ResNet-50 backbone (deep stem, V1c) in float.
# Also the PTQ entry point: train this config, then test it at chosen bits
#   --cfg-options model.backbone.w_bits=4 model.backbone.a_bits=4
# (QuantCalibrationHook re-measures the ranges before testing).
# For a checkpoint pretrained with the plain 7x7 stem add
#   --cfg-options model.backbone.type=mmpretrain.QuantResNet
_base_ = [
    'mmseg::fcn/fcn_r50-d8_4xb4-20k_voc12aug-512x512.py',
    './_base_/ssql-r50-v1c_backbone.py',
]
# The upstream base loads open-mmlab://resnet50_v1c here.
model = dict(pretrained=None, backbone={{_base_.ssql_backbone}})
