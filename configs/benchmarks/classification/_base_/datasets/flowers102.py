# Oxford Flowers-102: jpg/image_%05d.jpg with imagelabels.mat and setid.mat
# (mmpretrain's Flowers102; train split 'trainval', test split 'test'), on the
# shared transfer base. Another location: --cfg-options data_root=... is not
# enough (variables are substituted when read); set each dataloader's
# dataset.data_root.
_base_ = '../default_transfer.py'

data_root = 'data/Flowers102'
num_classes = 102
model = dict(head=dict(num_classes=num_classes))
data_preprocessor = dict(num_classes=num_classes)
train_dataloader = dict(
    dataset=dict(type='Flowers102', data_root=data_root, split='trainval'))
val_dataloader = dict(
    dataset=dict(type='Flowers102', data_root=data_root, split='test'))
test_dataloader = val_dataloader
calib_dataloader = dict(
    dataset=dict(type='Flowers102', data_root=data_root, split='trainval'))
