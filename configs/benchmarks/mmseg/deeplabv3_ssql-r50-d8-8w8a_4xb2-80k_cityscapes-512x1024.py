# QAT fine-tuning at 8w8a: DeepLabV3-d8, Cityscapes 512x1024, 80k.
# SSQL ResNet-50 backbone; activation ranges are measured on the first 10
# training batches, then frozen, saved in the checkpoint and reused for
# testing at the same bits.
_base_ = './deeplabv3_ssql-r50-d8-fp_4xb2-80k_cityscapes-512x1024.py'

model = dict(backbone=dict(w_bits=8, a_bits=8))
