# Oxford-IIIT Pets (37 breeds): images/*.jpg with
# annotations/{trainval,test}.txt (mmpretrain's OxfordIIITPet; train split
# 'trainval', test split 'test'), on the shared transfer base. Another
# location: --cfg-options data_root=... is not enough (variables are
# substituted when read); set each dataloader's dataset.data_root.
_base_ = '../default_transfer.py'

data_root = 'data/Oxford-IIIT_Pets'
num_classes = 37
model = dict(head=dict(num_classes=num_classes))
data_preprocessor = dict(num_classes=num_classes)
train_dataloader = dict(
    dataset=dict(type='OxfordIIITPet', data_root=data_root, split='trainval'))
val_dataloader = dict(
    dataset=dict(type='OxfordIIITPet', data_root=data_root, split='test'))
test_dataloader = val_dataloader
calib_dataloader = dict(
    dataset=dict(type='OxfordIIITPet', data_root=data_root, split='trainval'))
