# QAT fine-tuning at 8w8a: FCN-d8, VOC12aug 512x512, 20k.
# SSQL ResNet-50 backbone; activation ranges are measured on the first 10
# training batches, then frozen, saved in the checkpoint and reused for
# testing at the same bits.
_base_ = './fcn_ssql-r50-d8-fp_4xb4-20k_voc12aug-512x512.py'

model = dict(backbone=dict(w_bits=8, a_bits=8))
