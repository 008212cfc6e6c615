# The SSQL ResNet-50 backbone (deep stem, V1c) of the mmseg benchmark configs,
# in float, with the calibration hook. Configs take `ssql_backbone` as
# `model.backbone`; variables are used (not a `model` key) because MMEngine
# refuses a key set by two bases. The d8 stride/dilation pair is the
# default; ssql-r50-v1c-d32_backbone.py (UPerNet) overrides it.
custom_imports = dict(imports=['ssql_mm'], allow_failed_imports=False)

# SSQL pretraining checkpoint (keys 'backbone.*'); override with
# --cfg-options model.backbone.init_cfg.checkpoint=PATH
ssql_checkpoint = 'checkpoints/ssql-simsiam_resnet50-v1c_in1k.pth'
ssql_norm_cfg = dict(type='SyncBN', requires_grad=True)

ssql_backbone = dict(
    # Replaces the whole upstream backbone: mmseg's contract_dilation
    # (first block of a dilated stage at half dilation) has no
    # equivalent in mmpretrain's ResNet.
    _delete_=True,
    type='mmpretrain.QuantResNetV1c',
    depth=50,
    num_stages=4,
    out_indices=(0, 1, 2, 3),
    strides=(1, 2, 1, 1),
    dilations=(1, 1, 2, 4),
    norm_cfg=ssql_norm_cfg,
    norm_eval=False,
    style='pytorch',
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
