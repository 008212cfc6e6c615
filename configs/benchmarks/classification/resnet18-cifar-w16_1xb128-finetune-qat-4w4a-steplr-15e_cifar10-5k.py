# Quantization-aware fine-tuning at 4-bit weights and activations on the
# 5,000 labelled CIFAR-10 images of the float recipe (ranges calibrated on
# 1,000 of them with min/max, then frozen). Other bits:
# --cfg-options model.backbone.w_bits=W model.backbone.a_bits=A.
_base_ = './resnet18-cifar-w16_1xb128-finetune-steplr-15e_cifar10-5k.py'
model = dict(backbone=dict(w_bits=4, a_bits=4))
