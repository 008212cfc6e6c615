# CIFAR10 (mmpretrain's CIFAR10: the python pickles in
# data_root/cifar-10-batches-py/), on the shared transfer base. As in the
# official SSQL CIFAR transfer: 32 x 32 images resized to 224
# (RandomResizedCrop(224, 0.08-1) + flip for training, plain resize to 224 for
# testing), CIFAR mean/std. The images come decoded (RGB) from the pickles.
_base_ = '../default_transfer.py'

data_root = 'data/cifar10'
num_classes = 10
model = dict(head=dict(num_classes=num_classes))
data_preprocessor = dict(
    num_classes=num_classes,
    mean=[125.307, 122.961, 113.8575],
    std=[51.5865, 50.847, 51.255],
    to_rgb=False)
train_pipeline = [
    dict(
        type='RandomResizedCrop',
        scale=224,
        crop_ratio_range=(0.08, 1.0),
        interpolation='bilinear',
        backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='Resize', scale=(224, 224), interpolation='bilinear',
         backend='pillow'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=128,
    dataset=dict(type='CIFAR10', data_root=data_root, split='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=128,
    dataset=dict(type='CIFAR10', data_root=data_root, split='test',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
calib_dataloader = dict(
    dataset=dict(type='CIFAR10', data_root=data_root, split='train',
                 pipeline=test_pipeline))
