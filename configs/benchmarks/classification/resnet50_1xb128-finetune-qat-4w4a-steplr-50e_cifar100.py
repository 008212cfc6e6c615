# Quantization-aware fine-tuning on CIFAR100 at 4-bit weights and activations
# (ranges calibrated on 1,000 training images, then frozen). Other bits:
# --cfg-options model.backbone.w_bits=W model.backbone.a_bits=A.
_base_ = './resnet50_1xb128-finetune-steplr-50e_cifar100.py'
model = dict(backbone=dict(w_bits=4, a_bits=4))
