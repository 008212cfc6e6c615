# QAT fine-tuning at 4w4a: RetinaNet R50-FPN 1x COCO.
# SSQL ResNet-50 backbone; activation ranges are measured on the first 10
# training batches, then frozen, saved in the checkpoint and reused for
# testing at the same bits.
_base_ = './retinanet_ssql-r50-fp_fpn_1x_coco.py'

model = dict(backbone=dict(w_bits=4, a_bits=4))
