"""Observers against their definitions on distributions with known answers."""
import pytest
import torch
from torch import nn

from ssql_mm.quantization import (OBSERVERS, ActivationFakeQuantize,
                                  EMAMinMaxObserver, Histogram, KLObserver,
                                  MinMaxObserver, MSEObserver,
                                  PercentileObserver, QuantMode,
                                  build_observer, calibrate,
                                  fake_quantize_activation, kl_threshold,
                                  mse_weight_clip, observer_config,
                                  quantize_model, set_quant_mode)

# Standard normal quantile of 0.999 (normal tables).
Z_999 = 3.0902
# MSE-optimal clipping of a Gaussian for 4-bit uniform quantization, in
# units of sigma (Banner et al., "Post training 4-bit quantization", ACIQ).
ACIQ_GAUSS_4BIT = 2.55


def gaussian_with_outliers(n: int = 200_000, outlier: float = 50.) -> torch.Tensor:
    x = torch.randn(n, generator=torch.Generator().manual_seed(0))
    x[:10] = outlier
    x[10:20] = -outlier
    return x


def observe(observer, x, bits, chunks=4):
    for part in x.chunk(chunks):
        observer(part)
    observer.calculate_range(bits)
    return float(observer.min_val), float(observer.max_val)


def recon_error(x, low, high, bits):
    q = fake_quantize_activation(x, torch.tensor(low), torch.tensor(high), bits)
    return float((x - q).pow(2).mean())


def test_minmax_keeps_outliers():
    x = gaussian_with_outliers()
    assert observe(MinMaxObserver(), x, 4) == (-50., 50.)


def test_percentile_clips_at_the_normal_quantile():
    x = gaussian_with_outliers()
    low, high = observe(PercentileObserver(percentile=99.9), x, 4)
    assert high == pytest.approx(Z_999, abs=0.12)
    assert low == pytest.approx(-Z_999, abs=0.12)
    # the range does not depend on the bit-width
    obs = PercentileObserver(percentile=99.9)
    assert observe(obs, x, 8) == pytest.approx((low, high))


def test_mse_clips_outliers_and_beats_minmax():
    x = gaussian_with_outliers()
    low, high = observe(MSEObserver(grid=200, bins=4096), x, 4)
    assert 1.5 < high < 4. and -4. < low < -1.5
    assert recon_error(x, low, high, 4) < 0.5 * recon_error(x, -50., 50., 4)
    percentile = observe(PercentileObserver(percentile=99.9), x, 4)
    assert recon_error(x, low, high, 4) <= recon_error(x, *percentile, 4)


def test_mse_range_depends_on_bits():
    x = torch.randn(100_000, generator=torch.Generator().manual_seed(1))
    obs = MSEObserver()
    for part in x.chunk(2):
        obs(part)
    obs.calculate_range(2)
    high_2 = float(obs.max_val)
    obs.calculate_range(8)
    assert high_2 < float(obs.max_val)


def test_mse_keeps_a_uniform_range():
    x = torch.rand(100_000, generator=torch.Generator().manual_seed(2))
    low, high = observe(MSEObserver(), x, 8)
    assert low == pytest.approx(0., abs=1e-3) and high > 0.97


def test_mse_weight_clip_matches_gaussian_optimum_per_channel():
    sigma = torch.tensor([0.5, 1., 2.])
    w = torch.randn(3, 200_000, generator=torch.Generator().manual_seed(3))
    w = w * sigma[:, None]
    clip = mse_weight_clip(w, 4, ch_axis=0, grid=200)
    assert torch.allclose(clip / sigma, torch.full((3, ), ACIQ_GAUSS_4BIT),
                          atol=0.1)
    # channels along another axis give the same answer
    assert torch.allclose(mse_weight_clip(w.t(), 4, ch_axis=1, grid=200), clip)


def test_kl_threshold_on_hand_computed_histograms():
    # [6, 2, 1, 1] into 2 levels: keeping 3 bins gives
    # P = [.6, .2, .2], Q = [2/3, 1/6, 1/6], KL = .6 ln .9 + .4 ln 1.2 = 0.0097;
    # keeping 2 bins: KL = .6 ln .8 + .4 ln 1.6 = 0.0541;
    # all 4: P = [.6, .2, .1, .1], Q = [.4, .4, .1, .1], KL = 0.1046.
    assert kl_threshold(torch.tensor([6., 2., 1., 1.]), 2) == 3
    assert kl_threshold(torch.tensor([60., 20., 10., 10.]), 2) == 3
    # a flat histogram merges without loss: nothing is clipped
    assert kl_threshold(torch.full((16, ), 4.), 4) == 16
    assert kl_threshold(torch.ones(8), 16) == 8  # more levels than bins


def test_kl_clips_outliers_of_a_gaussian():
    x = gaussian_with_outliers()
    low, high = observe(KLObserver(), x, 8)
    assert 2. < high < 10. and -10. < low < -2.


def test_kl_ignores_the_relu_spike_at_zero():
    x = torch.relu(torch.randn(200_000, generator=torch.Generator().manual_seed(4)))
    low, high = observe(KLObserver(), x, 8)
    assert low == 0. and high > 3.


def test_ema_update_rule():
    obs = EMAMinMaxObserver(momentum=0.75)
    obs(torch.tensor([0., 1.]))
    assert (float(obs.min_val), float(obs.max_val)) == (0., 1.)
    obs(torch.tensor([-4., 5.]))
    assert float(obs.min_val) == pytest.approx(-1.)   # .75 * 0 + .25 * -4
    assert float(obs.max_val) == pytest.approx(2.)    # .75 * 1 + .25 * 5
    obs(torch.tensor([-1., 2.]))
    assert float(obs.min_val) == pytest.approx(-1.)
    assert float(obs.max_val) == pytest.approx(2.)
    obs.reset()
    obs(torch.tensor([3., 4.]))
    assert (float(obs.min_val), float(obs.max_val)) == (3., 4.)
    with pytest.raises(ValueError, match='momentum'):
        EMAMinMaxObserver(momentum=1.)


def test_histogram_widening_keeps_counts_and_quantiles():
    hist = Histogram(bins=1000)
    hist.add(torch.linspace(0., 1., 10_001))
    hist.add(torch.linspace(1., 3., 20_001)[1:])
    assert hist.total == 30_001
    assert (hist.low, hist.high) == (0., 3.)
    assert hist.quantile(0.5) == pytest.approx(1.5, abs=0.01)
    hist.add(torch.zeros(5))
    assert hist.zeros == 6 and hist.nonzero_counts().sum() == 30_000


@pytest.mark.parametrize('name', sorted(OBSERVERS))
@pytest.mark.parametrize('value', [0., 2.5])
def test_constant_input_gives_finite_output(name, value):
    quant = ActivationFakeQuantize(bits=4)
    quant.set_observer(build_observer(name))
    quant.set_mode(QuantMode.OBSERVE)
    x = torch.full((4, 8), value)
    quant(x)
    quant(x)
    quant.freeze()
    quant.set_mode(QuantMode.QUANTIZE)
    out = quant(x)
    assert torch.isfinite(out).all()
    assert torch.equal(out, x)


def test_observer_config_parsing_and_errors():
    assert observer_config('mse') == dict(type='mse')
    assert observer_config('percentile:percentile=99.9') == dict(
        type='percentile', percentile=99.9)
    assert observer_config('mse: grid=50, bins=4096') == dict(
        type='mse', grid=50, bins=4096)
    assert observer_config(dict(type='ema', momentum=0.5)) == dict(
        type='ema', momentum=0.5)
    obs = build_observer('percentile:percentile=99.5')
    assert isinstance(obs, PercentileObserver) and obs.percentile == 99.5
    assert build_observer('kl') is not build_observer('kl')
    with pytest.raises(ValueError, match='minmax, ema, percentile, mse, kl'):
        observer_config('entropy')
    with pytest.raises(ValueError, match="no argument \\['q'\\]"):
        observer_config('percentile:q=99')
    with pytest.raises(ValueError, match='KEY=VALUE'):
        observer_config('percentile:99')
    with pytest.raises(ValueError, match='percentile must be in'):
        build_observer('percentile:percentile=20')


def _net():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    quantize_model(net, 4, 4)
    set_quant_mode(net, QuantMode.QUANTIZE)
    return net


def _batches():
    g = torch.Generator().manual_seed(5)
    batches = [torch.randn(256, 16, generator=g) for _ in range(4)]
    batches[0][0, 0] = 60.  # one outlier
    return batches


def test_calibrate_with_an_observer_then_back_to_minmax():
    net = _net()
    batches = _batches()
    calibrate(net, batches, observer='mse')
    first = net[0].input_quant
    assert isinstance(first.observer, MSEObserver) and first.frozen
    assert float(first.observer.max_val) < 20.
    assert net[0].weight_quant.clip is not None
    state = net.state_dict()

    restored = _net()
    restored.load_state_dict(state)
    assert restored[0].input_quant.frozen
    assert torch.equal(restored[0].input_quant.observer.max_val,
                       first.observer.max_val)

    calibrate(net, batches)  # the default is the paper's min/max
    assert isinstance(first.observer, MinMaxObserver)
    assert float(first.observer.max_val) == 60.
    assert net[0].weight_quant.clip is None


def test_mse_weight_ranges_lower_the_weight_error():
    net = _net()
    batches = _batches()
    weight = net[0].weight.detach().clone()

    def weight_error():
        with torch.no_grad():
            return float((net[0].weight_quant(net[0].weight) - weight).pow(2).sum())

    calibrate(net, batches)
    minmax_error = weight_error()
    calibrate(net, batches, observer='mse')
    assert weight_error() < minmax_error


def test_mse_without_weights_clips_activations_only():
    net = _net()
    batches = _batches()
    weight = net[0].weight.detach().clone()
    max_abs = weight.flatten(1).abs().amax(1)

    def act_range(observer):
        calibrate(net, batches, observer=observer)
        quant = net[0].input_quant
        return float(quant.observer.min_val), float(quant.observer.max_val)

    both = act_range('mse')
    assert net[0].weight_quant.clip is not None
    assert not torch.allclose(net[0].weight_quant.clip_values(weight), max_abs)
    assert act_range('mse:weights=false') == both
    assert net[0].weight_quant.clip is None  # max |w_c|
    assert act_range(dict(type='mse', weights=False)) == both
    assert act_range('minmax') != both


@pytest.mark.parametrize('value', ['0', 'no', '1'])
def test_mse_weights_flag_is_a_boolean(value):
    with pytest.raises(ValueError, match='weights must be true or false'):
        build_observer(f'mse:weights={value}')


def test_frozen_quantizer_keeps_its_observer():
    quant = ActivationFakeQuantize(bits=4)
    quant.set_mode(QuantMode.OBSERVE)
    quant(torch.randn(8))
    quant.freeze()
    with pytest.raises(RuntimeError, match='unfreeze'):
        quant.set_observer(MSEObserver())
