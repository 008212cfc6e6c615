# SSQL-SimSiam, CIFAR ResNet-18, CIFAR-10: the paper's settings (400 epochs,
# batch 512 = 4 x 128, SGD lr 0.05, momentum 0.9, wd 5e-4, cosine to 0),
# weights 2-8 bit and activations 4-8 bit drawn per iteration.
_base_ = '../baselines/simsiam_resnet18_4xb128-coslr-400e_cifar10.py'

model = dict(
    type='SSQLSimSiam',
    quant_cfg=dict(w_bits=4, a_bits=4, placement='integer'))
custom_hooks = [
    dict(type='QuantHook', w_bits_range=(2, 8), a_bits_range=(4, 8)),
]
log_processor = dict(custom_cfg=[
    dict(data_src='w_bit', method_name='current'),
    dict(data_src='a_bit', method_name='current'),
])
