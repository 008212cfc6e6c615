# Fine-tune a pretrained SSQL ResNet-50 on Flowers102 (official SSQL recipe);
# float by default. PTQ after fine-tuning: test this config with
# --cfg-options model.backbone.w_bits=W model.backbone.a_bits=A (the hook
# calibrates on 1,000 training images first), or run
# tools/benchmarks/transfer.py for a table over bit-widths and observers.
_base_ = [
    './_base_/datasets/flowers102.py',
    './_base_/schedules/finetune_sgd_steplr_50e.py',
]
