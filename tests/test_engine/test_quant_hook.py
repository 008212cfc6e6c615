"""QuantHook: validation, the draws, the bits reaching the model, its state."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub
from torch import nn

from ssql_mm.engine import QuantHook
from ssql_mm.quantization import get_bits, quantize_model


def fake_runner(seed: int = 0):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3))
    quantize_model(model, 4, 4, overrides=[dict(name='0', w_bits=8)])
    hub = MessageHub.get_instance(f'quant-hook-test-{seed}-{id(model)}')
    return SimpleNamespace(model=model, message_hub=hub, seed=seed)


@pytest.mark.parametrize('w_range,a_range,error', [
    ((1, 8), (4, 8), ValueError),
    ((5, 3), (4, 8), ValueError),
    ((0, 4), (4, 8), ValueError),
    ((2, 33), (4, 8), ValueError),
    ((2, 8), (4, 33), ValueError),
    ((2, 8.0), (4, 8), TypeError),
    ((2, 8, 9), (4, 8), TypeError),
])
def test_bad_ranges_fail_at_construction(w_range, a_range, error):
    with pytest.raises(error, match='range'):
        QuantHook(w_bits_range=w_range, a_bits_range=a_range)


def test_draws_cover_inclusive_ranges_and_reach_the_model():
    runner = fake_runner()
    hook = QuantHook(w_bits_range=(2, 8), a_bits_range=(4, 8))
    hook.before_train(runner)
    seen_w, seen_a = set(), set()
    for i in range(300):
        hook.before_train_iter(runner, i)
        w = runner.message_hub.get_scalar('train/w_bit').current()
        a = runner.message_hub.get_scalar('train/a_bit').current()
        assert get_bits(runner.model) == {'0': (8, a), '1': (w, a)}
        seen_w.add(w)
        seen_a.add(a)
    assert seen_w == set(range(2, 9)) and seen_a == set(range(4, 9))


def test_state_round_trip_gives_the_same_sequence():
    runner = fake_runner(seed=7)
    hook = QuantHook()
    hook.before_train(runner)

    def draw(h, n):
        out = []
        for i in range(n):
            h.before_train_iter(runner, i)
            out.append(get_bits(runner.model)['1'])
        return out

    draw(hook, 5)
    checkpoint = {}
    hook.before_save_checkpoint(runner, checkpoint)
    expected = draw(hook, 10)

    resumed = QuantHook()
    resumed.after_load_checkpoint(runner, checkpoint)
    resumed.before_train(runner)             # must not reseed
    assert draw(resumed, 10) == expected
    # a different seed gives a different sequence
    other = QuantHook(seed=8)
    other.before_train(runner)
    assert draw(other, 10) != expected


def test_needs_a_quantized_model():
    runner = SimpleNamespace(model=nn.Linear(2, 2), seed=0)
    with pytest.raises(RuntimeError, match='no quantized layer'):
        QuantHook().before_train(runner)
