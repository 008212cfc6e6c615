# FGVC-Aircraft (100 variants): data/images/<id>.jpg with
# data/images_variant_{trainval,test}.txt (mmpretrain's FGVCAircraft; train
# split 'trainval', test split 'test'), on the shared transfer base. Another
# location: --cfg-options data_root=... is not enough (variables are
# substituted when read); set each dataloader's dataset.data_root.
_base_ = '../default_transfer.py'

data_root = 'data/fgvc-aircraft-2013b'
num_classes = 100
model = dict(head=dict(num_classes=num_classes))
data_preprocessor = dict(num_classes=num_classes)
train_dataloader = dict(
    dataset=dict(type='FGVCAircraft', data_root=data_root, split='trainval'))
val_dataloader = dict(
    dataset=dict(type='FGVCAircraft', data_root=data_root, split='test'))
test_dataloader = val_dataloader
calib_dataloader = dict(
    dataset=dict(type='FGVCAircraft', data_root=data_root, split='trainval'))
