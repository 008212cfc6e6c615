# Food-101: images/<class>/*.jpg with meta/{train,test}.txt (mmpretrain's
# Food101; train split 'train', test split 'test'), on the shared transfer
# base. Another location: --cfg-options data_root=... is not enough (variables
# are substituted when read); set each dataloader's dataset.data_root.
_base_ = '../default_transfer.py'

data_root = 'data/food-101'
num_classes = 101
model = dict(head=dict(num_classes=num_classes))
data_preprocessor = dict(num_classes=num_classes)
train_dataloader = dict(
    dataset=dict(type='Food101', data_root=data_root, split='train'))
val_dataloader = dict(
    dataset=dict(type='Food101', data_root=data_root, split='test'))
test_dataloader = val_dataloader
calib_dataloader = dict(
    dataset=dict(type='Food101', data_root=data_root, split='train'))
