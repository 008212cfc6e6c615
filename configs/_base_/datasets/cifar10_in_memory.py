# CIFAR-10 decoded once into memory (class folders or their .tar.gz archives
# under data_root); the two SimSiam views are made batched by the model's
# BatchViewPreprocessor (same augmentation as cifar10_simsiam.py).
data_root = 'data/cifar10'
train_dataloader = dict(
    batch_size=128,
    num_workers=0,
    persistent_workers=False,
    drop_last=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='CIFAR10InMemory',
        data_root=data_root,
        split='train',
        cache_dir='data/cache/cifar10_arrays'))
