# The SSQL ResNet-50 backbone of the mmdet benchmark configs, in float, with
# the calibration hook. Configs take `ssql_backbone` as `model.backbone`
# (merged into mmdet's ResNet-50 block, whose depth, stages, frozen stem and
# norm settings stay); a variable is used, not a `model` key, because
# MMEngine refuses a key set by two bases.
custom_imports = dict(imports=['ssql_mm'], allow_failed_imports=False)

# SSQL pretraining checkpoint (keys 'backbone.*'); override with
# --cfg-options model.backbone.init_cfg.checkpoint=PATH
ssql_checkpoint = 'checkpoints/ssql-simsiam_resnet50_in1k.pth'

ssql_backbone = dict(
    type='mmpretrain.QuantResNet',
    w_bits=0,
    a_bits=0,
    placement='integer',
    init_cfg=dict(
        type='Pretrained', checkpoint=ssql_checkpoint, prefix='backbone.'))

# Measures activation ranges when the backbone runs quantized and has none
# (see QuantCalibrationHook); a no-op for the float model.
custom_hooks = [
    dict(
        type='mmpretrain.QuantCalibrationHook',
        num_batches=10,
        dataloader='train')
]
