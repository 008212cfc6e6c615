# UPerNet, ADE20K 512x512, 160k.
# SSQL ResNet-50 backbone (deep stem, V1c) in float.
# Also the PTQ entry point: train this config, then test it at chosen bits
#   --cfg-options model.backbone.w_bits=4 model.backbone.a_bits=4
# (QuantCalibrationHook measures the ranges on the loaded weights).
# For a checkpoint pretrained with the plain 7x7 stem add
#   --cfg-options model.backbone.type=mmpretrain.QuantResNet
_base_ = [
    'mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py',
    './_base_/ssql-r50-v1c-d32_backbone.py',
]
# The upstream base loads open-mmlab://resnet50_v1c here.
model = dict(pretrained=None, backbone={{_base_.ssql_backbone}})
