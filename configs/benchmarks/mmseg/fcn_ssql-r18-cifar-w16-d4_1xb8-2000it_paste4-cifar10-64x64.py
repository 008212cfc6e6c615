# Downstream segmentation benchmark on CPU: FCN (output stride 4) with the
# narrow CIFAR ResNet-18 of the model zoo's CIFAR-10 checkpoints, fine-tuned
# in float on the paste dataset's label maps (background and four classes;
# the dataset command is in the RetinaNet benchmark config of
# configs/benchmarks/mmdet/).
# Random init by default; `tools/benchmarks/transfer.py --pretrained ZOO_NAME
# --metric mIoU` fine-tunes a checkpoint and quantizes the result
# post-training at any bits; `--qat` fine-tunes quantization-aware.
_base_ = '../../demo/fcn_ssql-r18-w16-d4-fp_paste-cifar10-96x96.py'

data_root = 'data/paste4_cifar10/'
classes = ('background', 'airplane', 'automobile', 'frog', 'horse')
image_size = 64
max_iters = 2000

model = dict(
    data_preprocessor=dict(size=(image_size, image_size)),
    backbone=dict(init_cfg=None),
    decode_head=dict(
        num_classes=len(classes),
        loss_decode=dict(class_weight=[0.1] + [1.0] * (len(classes) - 1))))
train_dataloader = dict(
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes)))
val_dataloader = dict(
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes)))
test_dataloader = val_dataloader

param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', T_max=max_iters, by_epoch=False, begin=0,
         end=max_iters)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=50), checkpoint=dict(interval=max_iters))
