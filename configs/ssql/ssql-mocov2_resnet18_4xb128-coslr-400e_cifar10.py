# SSQL-MoCo v2, CIFAR ResNet-18, CIFAR-10: identical to its MoCo v2 baseline
# except for the algorithm; weights 2-8 bit and activations 4-8 bit drawn
# per iteration.
_base_ = '../baselines/mocov2_resnet18_4xb128-coslr-400e_cifar10.py'

model = dict(
    type='SSQLMoCoV2',
    quant_cfg=dict(w_bits=4, a_bits=4, placement='integer'))
custom_hooks = [
    dict(type='QuantHook', w_bits_range=(2, 8), a_bits_range=(4, 8)),
]
log_processor = dict(custom_cfg=[
    dict(data_src='w_bit', method_name='current'),
    dict(data_src='a_bit', method_name='current'),
])
