# CIFAR100 (mmpretrain's CIFAR100: the python pickles in
# data_root/cifar-100-python/): the CIFAR10 base (same recipe: 32 x 32 images
# resized to 224, CIFAR mean/std) with the dataset and class count swapped.
_base_ = './cifar10.py'

data_root = 'data/cifar100'
num_classes = 100
model = dict(head=dict(num_classes=num_classes))
data_preprocessor = dict(num_classes=num_classes)
train_dataloader = dict(dataset=dict(type='CIFAR100', data_root=data_root))
val_dataloader = dict(dataset=dict(type='CIFAR100', data_root=data_root))
test_dataloader = val_dataloader
calib_dataloader = dict(dataset=dict(type='CIFAR100', data_root=data_root))
