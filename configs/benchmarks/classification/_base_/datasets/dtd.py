# Describable Textures (47 classes): images/<class>/*.jpg with imdb/imdb.mat
# (mmpretrain's DTD; train split 'trainval', test split 'test'), on the shared
# transfer base. Another location: --cfg-options data_root=... is not enough
# (variables are substituted when read); set each dataloader's
# dataset.data_root.
_base_ = '../default_transfer.py'

data_root = 'data/dtd'
num_classes = 47
model = dict(head=dict(num_classes=num_classes))
data_preprocessor = dict(num_classes=num_classes)
train_dataloader = dict(
    dataset=dict(type='DTD', data_root=data_root, split='trainval'))
val_dataloader = dict(
    dataset=dict(type='DTD', data_root=data_root, split='test'))
test_dataloader = val_dataloader
calib_dataloader = dict(
    dataset=dict(type='DTD', data_root=data_root, split='trainval'))
