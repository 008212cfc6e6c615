# BYOL with a CIFAR ResNet-18, as the official SSQL-BYOL CIFAR recipe: the
# SimSiam CIFAR projector (three 2048-d layers ending in an affine-free BN)
# and predictor (2048 -> 2048 -> 2048); the target network is an EMA with
# m = 0.99 (base_momentum=0.01). mmpretrain's BYOL anneals m from 0.99 to 1
# (CosineEMA) where the official code keeps 0.99.
_base_ = './simsiam_resnet18_cifar.py'

model = dict(type='BYOL', base_momentum=0.01)
