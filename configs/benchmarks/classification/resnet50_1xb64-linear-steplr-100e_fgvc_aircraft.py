# Linear probe of a pretrained SSQL ResNet-50 on FGVCAircraft (official SSQL
# recipe): frozen backbone and BatchNorm statistics, float linear head. At
# other bits (--cfg-options model.backbone.w_bits=W model.backbone.a_bits=A)
# the frozen backbone is calibrated once before training and the head learns
# on its quantized features, as in the paper's linear evaluation.
_base_ = [
    './_base_/datasets/fgvc_aircraft.py',
    './_base_/schedules/linear_sgd_steplr_100e.py',
]
model = dict(backbone=dict(frozen_stages=4, norm_eval=True))
