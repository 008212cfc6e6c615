# Downstream detection benchmark on CPU: RetinaNet with the narrow CIFAR
# ResNet-18 of the model zoo's CIFAR-10 checkpoints, fine-tuned in float on
# the paste dataset: CIFAR-10 test images of four classes, 32-48 px, one or
# two per 64x64 canvas of smooth background:
#   python tools/make_paste_dataset.py data/cache/cifar10/test \
#       data/paste4_cifar10 --num-train 3000 --num-val 500 --image-size 64 \
#       --min-size 32 --max-size 48 --max-objects 2 \
#       --classes airplane automobile frog horse
# Random init by default; `tools/benchmarks/transfer.py --pretrained ZOO_NAME
# --metric coco/bbox_mAP` fine-tunes a checkpoint and quantizes the result
# post-training at any bits (QuantCalibrationHook); `--qat` with
# model.backbone.w_bits/a_bits fine-tunes quantization-aware.
# tools/benchmarks/downstream_cifar.py runs the whole study.
_base_ = '../../demo/retinanet_ssql-r18-w16-fp_paste-cifar10-96x96.py'

data_root = 'data/paste4_cifar10/'
classes = ('airplane', 'automobile', 'frog', 'horse')
image_size = 64
max_epochs = 8

model = dict(
    backbone=dict(init_cfg=None), bbox_head=dict(num_classes=len(classes)))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes)))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True,
         begin=0, end=max_epochs, convert_to_iter_based=True)
]
default_hooks = dict(
    logger=dict(interval=50), checkpoint=dict(interval=max_epochs))
