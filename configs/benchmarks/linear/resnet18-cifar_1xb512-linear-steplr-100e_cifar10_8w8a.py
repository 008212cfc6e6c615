# CIFAR ResNet-18 linear evaluation at 8-bit weights and activations; everything else as in the
# 4w4a config.
_base_ = './resnet18-cifar_1xb512-linear-steplr-100e_cifar10_4w4a.py'

model = dict(backbone=dict(w_bits=8, a_bits=8))
