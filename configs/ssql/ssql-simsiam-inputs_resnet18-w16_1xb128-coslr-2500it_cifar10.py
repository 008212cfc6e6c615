# SSQL-SimSiam of the CPU reproduction with the 'inputs' quantizer placement
# (every conv quantizes its own input; the identity shortcut adds the float
# block input): how the reproduction trained before 'integer' became the
# default. It exists for the zoo model trained that way
# (ssql-simsiam-inputs_resnet18-w16_1xb128-coslr-2500it_cifar10): get_model
# rebuilds a zoo backbone from its entry's config, so the entry needs a
# config that builds the network its weights were trained as.
_base_ = './ssql-simsiam_resnet18-w16_1xb128-coslr-2500it_cifar10.py'

model = dict(quant_cfg=dict(placement='inputs'))
