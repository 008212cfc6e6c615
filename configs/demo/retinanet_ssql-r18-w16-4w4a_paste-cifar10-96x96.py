# CPU demo, detection, QAT at 4w4a: ranges measured on the first 4 training
# batches, frozen, used for training and for testing at the same bits.
_base_ = './retinanet_ssql-r18-w16-fp_paste-cifar10-96x96.py'

model = dict(backbone=dict(w_bits=4, a_bits=4))
