# Quantization-aware fine-tuning on OxfordIIITPet at 4-bit weights and activations:
# activation ranges calibrated on 1,000 training images before training and
# kept frozen, weights fake-quantized at every step (ranges from the
# weights). Other bits: --cfg-options model.backbone.w_bits=W
# model.backbone.a_bits=A.
_base_ = './resnet50_1xb64-finetune-steplr-50e_oxford_iiit_pet.py'
model = dict(backbone=dict(w_bits=4, a_bits=4))
