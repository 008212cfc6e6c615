"""Calibrating on an InfiniteSampler loader leaves training's loader intact."""
from mmengine.dataset import InfiniteSampler, pseudo_collate
from torch.utils.data import DataLoader

from ssql_mm.engine.hooks.quant_calibration_hook import finite_loader


def test_finite_stand_in_for_infinite_loaders():
    data = list(range(10))
    infinite = DataLoader(data, batch_size=4, sampler=InfiniteSampler(data, shuffle=False),
                          collate_fn=pseudo_collate)
    train_iter = iter(infinite)
    first = next(train_iter)
    stand_in = finite_loader(infinite)
    assert stand_in is not infinite
    seen = sorted(x for batch in stand_in for x in batch)
    assert seen == data                       # one pass over the dataset, then stops
    for i, _ in enumerate(stand_in):          # leaving it early is harmless
        if i == 0:
            break
    # the training loader's own iterator keeps going where it was
    assert next(train_iter) == [4, 5, 6, 7] and first == [0, 1, 2, 3]
    finite = DataLoader(data, batch_size=4)
    assert finite_loader(finite) is finite
