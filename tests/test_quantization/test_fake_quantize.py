"""Fake quantizers against the spec's formulas, including degenerate inputs."""
import pytest
import torch

from ssql_mm.quantization import (ActivationFakeQuantize, QuantMode,
                                  WeightFakeQuantize, activation_qparams,
                                  check_bits, fake_quantize_activation,
                                  fake_quantize_weight, weight_qparams)


def official_weight(w: torch.Tensor, b: int) -> torch.Tensor:
    """The spec's symmetric per-output-channel formula, written out."""
    m = w.reshape(w.shape[0], -1).abs().max(dim=1).values
    scale = (m / ((2**b - 1) / 2)).reshape(-1, *([1] * (w.dim() - 1)))
    q = torch.clamp(torch.round(w / scale), -2**(b - 1), 2**(b - 1) - 1)
    return q * scale


def assert_same_grid(out, expected, step, codes):
    """Equal, except that a value lying on a rounding tie (within float
    error) may land one step away: the kernel multiplies by 1/scale."""
    on_tie = ((codes - codes.floor()) - 0.5).abs() < 1e-4
    diff = (out - expected).abs()
    assert (diff[~on_tie] < 1e-5 * (1 + expected.abs()[~on_tie])).all()
    assert (diff[on_tie] <= step.expand_as(diff)[on_tie] * 1.0001).all()


def official_activation(x: torch.Tensor, lo: float, hi: float, b: int) -> torch.Tensor:
    """The spec's asymmetric per-tensor formula (no widening), written out."""
    scale = (hi - lo) / (2**b - 1)
    zp = -round(lo / scale)
    q = torch.clamp(torch.round(x / scale) + zp, 0, 2**b - 1)
    return (q - zp) * scale


@pytest.mark.parametrize('bits', [2, 3, 4, 8])
def test_weight_matches_formula(bits):
    torch.manual_seed(bits)
    w = torch.randn(6, 3, 3, 3)
    scale, zp = weight_qparams(w, bits)
    expected_scale = w.reshape(6, -1).abs().amax(1) / ((2**bits - 1) / 2)
    torch.testing.assert_close(scale, expected_scale)
    assert zp.dtype == torch.int32 and (zp == 0).all()
    out = fake_quantize_weight(w, bits)
    step = scale.reshape(-1, 1, 1, 1)
    assert_same_grid(out, official_weight(w, bits), step, w / step)
    # at most 2^b distinct values per channel
    assert all(len(out[c].unique()) <= 2**bits for c in range(6))


@pytest.mark.parametrize('bits', [4, 8])
def test_activation_matches_formula_for_post_relu_range(bits):
    torch.manual_seed(0)
    x = torch.relu(torch.randn(4, 8, 5, 5))
    lo, hi = x.min(), x.max()
    assert lo == 0
    scale, zp, degenerate = activation_qparams(lo, hi, bits)
    torch.testing.assert_close(scale, (hi - lo) / (2**bits - 1))
    assert int(zp) == 0 and not bool(degenerate)
    out = fake_quantize_activation(x, lo, hi, bits)
    torch.testing.assert_close(out, official_activation(x, float(lo), float(hi), bits))


def test_activation_signed_range_matches_formula():
    torch.manual_seed(1)
    x = torch.randn(1000)
    lo, hi = x.min(), x.max()
    scale, zp, _ = activation_qparams(lo, hi, 4)
    assert int(zp) == -round(float(lo) / float(scale))
    torch.testing.assert_close(
        fake_quantize_activation(x, lo, hi, 4),
        official_activation(x, float(lo), float(hi), 4))


def test_activation_range_is_widened_to_contain_zero():
    # Deviation from the official code: a range [2, 10] becomes [0, 10].
    x = torch.linspace(2, 10, 50)
    lo, hi = x.min(), x.max()
    scale, zp, _ = activation_qparams(lo, hi, 4)
    torch.testing.assert_close(scale, torch.tensor(10 / 15))
    assert int(zp) == 0
    out = fake_quantize_activation(x, lo, hi, 4)
    torch.testing.assert_close(out, official_activation(x, 0.0, 10.0, 4))
    # the official (unwidened) grid differs for the same range
    assert not torch.allclose(out, official_activation(x, 2.0, 10.0, 4))


def test_round_half_to_even():
    # scale 1 with range [0, 15] at 4 bits: codes are plain rounding of x
    x = torch.tensor([0.5, 1.5, 2.5, 3.5])
    out = fake_quantize_activation(x, torch.tensor(0.), torch.tensor(15.), 4)
    torch.testing.assert_close(out, torch.tensor([0., 2., 2., 4.]))


def test_straight_through_gradients():
    x = torch.tensor([-1.0, 0.2, 3.0, 7.0], requires_grad=True)
    # range [0, 3]: -1 and 7 fall outside the codes and get no gradient
    fake_quantize_activation(x, torch.tensor(0.), torch.tensor(3.), 2).sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([0., 1., 1., 0.]))

    w = torch.randn(3, 4, requires_grad=True)
    fake_quantize_weight(w, 4).mul(torch.arange(12.).reshape(3, 4)).sum().backward()
    # values inside the symmetric grid: identity gradient; the channel
    # maximum maps to code 2^(b-1) - 0.5 rounded to 8 > 7, clamped: zero grad
    mask = (torch.round(w / weight_qparams(w, 4)[0][:, None]) <= 7) & (
        torch.round(w / weight_qparams(w, 4)[0][:, None]) >= -8)
    torch.testing.assert_close(w.grad, torch.arange(12.).reshape(3, 4) * mask)


@pytest.mark.parametrize('bits', [2, 4, 8])
def test_degenerate_inputs_are_finite(bits):
    w = torch.randn(4, 3, 3, 3)
    w[1] = 0.0                     # all-zero channel
    w[2] = 0.37                    # constant channel
    out = fake_quantize_weight(w, bits)
    assert torch.isfinite(out).all()
    assert (out[1] == 0).all()
    # other channels are still quantized per channel
    torch.testing.assert_close(out[0], official_weight(w[:1], bits)[0])
    assert torch.isfinite(fake_quantize_weight(torch.zeros(3, 5), bits)).all()

    # zero-width activation range returns the input unchanged
    x = torch.full((2, 3), 0.0)
    zero = torch.tensor(0.)
    torch.testing.assert_close(fake_quantize_activation(x, zero, zero, bits), x)
    y = torch.randn(2, 3)
    torch.testing.assert_close(fake_quantize_activation(y, zero, zero, bits), y)
    # constant positive tensor: range widened to [0, c], finite
    c = torch.full((5, ), 2.5)
    out = fake_quantize_activation(c, c.min(), c.max(), bits)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, c)


def test_check_bits():
    assert check_bits(0) is None and check_bits(None) is None
    assert check_bits(4) == 4
    for bad in (1, 17, -3):
        with pytest.raises(ValueError, match='use an integer in'):
            check_bits(bad)
    for bad in (4.0, '4', True):
        with pytest.raises(TypeError):
            check_bits(bad)


def test_quantizer_modes_and_bits():
    wq = WeightFakeQuantize(4)
    w = torch.randn(3, 5)
    assert wq(w) is w                              # float mode by default
    wq.set_mode(QuantMode.QUANTIZE)
    torch.testing.assert_close(wq(w), fake_quantize_weight(w, 4))
    wq.bits = 0
    assert wq(w) is w
    with pytest.raises(ValueError, match='Unknown quantization mode'):
        wq.set_mode('quantise')

    aq = ActivationFakeQuantize(8)
    aq.set_mode(QuantMode.QUANTIZE)
    with pytest.raises(RuntimeError, match='never measured'):
        aq(torch.randn(3))
    x = torch.randn(10)
    aq.set_mode(QuantMode.OBSERVE)
    assert aq(x) is x
    aq.set_mode(QuantMode.QUANTIZE)
    torch.testing.assert_close(aq(x), fake_quantize_activation(x, x.min(), x.max(), 8))
    with pytest.raises(RuntimeError, match='never observed'):
        ActivationFakeQuantize(4).freeze()


@pytest.mark.parametrize('bits', [2, 4, 8])
@pytest.mark.parametrize('low,high', [(0., 3.), (-1.3, 2.7), (-5., -0.5)])
def test_per_tensor_fake_quantize_is_torch_fused_kernel(bits, low, high):
    """Values and straight-through gradients bit-identical to
    ``torch.fake_quantize_per_tensor_affine``, ties and clamped codes
    included."""
    from ssql_mm.quantization.fake_quantize import (activation_qparams,
                                                    fake_quantize_per_tensor)
    scale, zero_point, _ = activation_qparams(torch.tensor(low),
                                              torch.tensor(high), bits)
    gen = torch.Generator().manual_seed(bits)
    codes = torch.arange(-2**bits - 3, 2**bits + 3, dtype=torch.float32)
    ties = (codes + 0.5 - zero_point.float()) * scale  # exactly half-way
    noise = (torch.rand(4000, generator=gen) * 1.6 - 0.3) * (high - low) + low
    x = torch.cat([ties, ties.nextafter(ties + 1), noise,
                   torch.tensor([float('inf'), -float('inf'), 0.])])
    x = x.view(1, -1, 1).expand(2, -1, 3).contiguous().requires_grad_()
    grad = torch.randn(x.shape, generator=gen)

    fused = torch.fake_quantize_per_tensor_affine(x, scale, zero_point, 0,
                                                  2**bits - 1)
    (fused_grad, ) = torch.autograd.grad(fused, x, grad)
    ours = fake_quantize_per_tensor(x, scale, zero_point, 2**bits - 1)
    (ours_grad, ) = torch.autograd.grad(ours, x, grad)
    assert torch.equal(ours, fused)
    assert torch.equal(ours_grad, fused_grad)
    assert 0 < (fused_grad == 0).sum() < x.numel()  # some codes clamped


def test_per_tensor_fake_quantize_without_grad_matches():
    from ssql_mm.quantization.fake_quantize import fake_quantize_per_tensor
    x = torch.randn(3, 8, 5, 5)
    scale, zero_point = torch.tensor(0.02), torch.tensor(7, dtype=torch.int32)
    with torch.no_grad():
        ours = fake_quantize_per_tensor(x, scale, zero_point, 15)
    assert torch.equal(
        ours, torch.fake_quantize_per_tensor_affine(x, scale, zero_point, 0, 15))
