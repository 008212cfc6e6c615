# Fine-tune a pretrained SSQL ResNet-50 on CIFAR100 at 224 x 224 (official SSQL
# CIFAR recipe: batch 128, lr 0.01, otherwise the fine-tuning schedule);
# float by default. PTQ after fine-tuning: test with --cfg-options
# model.backbone.w_bits=W model.backbone.a_bits=A, or run
# tools/benchmarks/transfer.py.
_base_ = [
    './_base_/datasets/cifar100.py',
    './_base_/schedules/finetune_sgd_steplr_50e.py',
]
optim_wrapper = dict(optimizer=dict(lr=0.01))
auto_scale_lr = dict(base_batch_size=128)
