# QAT fine-tuning at 8w8a: UPerNet, ADE20K 512x512, 160k.
# SSQL ResNet-50 backbone; activation ranges are measured on the first 10
# training batches, then frozen, saved in the checkpoint and reused for
# testing at the same bits.
_base_ = './upernet_ssql-r50-fp_4xb4-160k_ade20k-512x512.py'

model = dict(backbone=dict(w_bits=8, a_bits=8))
