# The SSQL ResNet-50 backbone of ssql-r50-v1c_backbone.py without dilation
# (output stride 32), as UPerNet uses it.
_base_ = './ssql-r50-v1c_backbone.py'

ssql_backbone = dict(strides=(1, 2, 2, 2), dilations=(1, 1, 1, 1))
