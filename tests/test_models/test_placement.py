"""Quantizer placement around residual additions: the paper's placement
against the official equations, the integer placement, and placements
sharing one checkpoint."""
import pytest
import torch

from ssql_mm.models.backbones import (QuantResNet, QuantResNet_CIFAR,
                                      check_placement)
from ssql_mm.quantization import (calibrate, free_activation_quantizers,
                                  get_bits, quantizing)
from official_ssql_forward import OfficialForward

CIFAR18 = dict(depth=18, stem_channels=8, base_channels=8, out_indices=(3, ))
# Bottleneck blocks; stage widths 8..64 keep it fast at 32x32.
R50 = dict(depth=50, stem_channels=8, base_channels=4, out_indices=(3, ))
SETTINGS = [(2, 4), (4, 4), (8, 8)]


def _images(seed, n=8):
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def _backbone(cls, arch, placement, w_bits, a_bits):
    torch.manual_seed(0)
    model = cls(**arch, w_bits=w_bits, a_bits=a_bits, placement=placement)
    # Non-trivial BatchNorm statistics, as after training.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.3, 0.3)
        if isinstance(module, torch.nn.Conv2d):
            # The largest |w| of a channel sits exactly on a rounding tie
            # (+-(2^b - 1) / 2 steps); its sign decides whether float error
            # can flip the clamped code. Positive maxima clamp the same way
            # in any float order, so the comparison is about placement.
            w = module.weight.data.flatten(1)
            sign = w.gather(1, w.abs().argmax(1, keepdim=True)).sign()
            module.weight.data.mul_(sign.view(-1, 1, 1, 1))
    model.eval()  # mmpretrain's ResNet.train() does not return self
    return model


def _agree(ours, ref, a_bits):
    """Equal up to float rounding: a code may flip only where float error
    in the two computations straddles a rounding tie (rare, and then by one
    step)."""
    step = (ref.max() - ref.min()) / (2**a_bits - 1)
    diff = (ours - ref).abs()
    assert diff.max() <= step * 1.001
    assert (diff <= 1e-5).float().mean() >= 0.999, (
        f'{(diff > 1e-5).float().mean():.2%} of the outputs differ')


@pytest.mark.parametrize('cls,arch', [(QuantResNet_CIFAR, CIFAR18),
                                      (QuantResNet, R50)],
                         ids=['BasicBlock', 'Bottleneck'])
@pytest.mark.parametrize('w_bits,a_bits', SETTINGS)
@pytest.mark.parametrize('placement,pre_add', [('paper', False),
                                               ('integer', True)])
def test_placement_matches_the_official_equations(cls, arch, w_bits, a_bits,
                                                  placement, pre_add):
    model = _backbone(cls, arch, placement, w_bits, a_bits)
    calib, images = _images(1), _images(2)
    calibrate(model, [calib])
    with torch.no_grad(), quantizing(model):
        ours = model(images)[-1]
    official = OfficialForward(model, w_bits, a_bits,
                               a_bits if pre_add else None)
    ref = official(calib, images)
    # The downsample case is covered: both nets have downsample blocks.
    assert any(b.downsample is not None for b in model.modules()
               if hasattr(b, 'downsample'))
    _agree(ours, ref, a_bits)


def test_inputs_placement_departs_from_the_official_identity_path():
    """The default placement adds the float identity, so it does not
    reproduce the official block output: the fixture can tell them apart."""
    model = _backbone(QuantResNet_CIFAR, CIFAR18, 'inputs', 4, 4)
    calib, images = _images(1), _images(2)
    calibrate(model, [calib])
    with torch.no_grad(), quantizing(model):
        ours = model(images)[-1]
    ref = OfficialForward(model, 4, 4)(calib, images)
    assert (ours - ref).abs().max() > 0.1 * ref.abs().max()


def test_integer_placement_quantizes_every_addition_operand():
    model = _backbone(QuantResNet_CIFAR, CIFAR18, 'integer', 4, 4)
    active = {n for n, q in free_activation_quantizers(model) if q.bits}
    blocks = [f'layer{i}.{j}' for i in range(1, 5) for j in range(2)]
    assert {f'{b}.branch_quant' for b in blocks} <= active
    assert {f'{b}.output_quant' for b in blocks} <= active
    # Downsample outputs: layer1 too (stem 8 -> 8 channels at stride 1 has
    # none), so exactly the stages that change width or stride.
    shortcuts = {n for n in active if n.endswith('shortcut_quant')}
    assert shortcuts == {f'layer{i}.0.shortcut_quant' for i in (2, 3, 4)}
    assert 'layer1.0.input_quant' in active
    assert not any(n.endswith('input_quant') and n != 'layer1.0.input_quant'
                   for n in active)
    bits = get_bits(model)
    # Convs reading a block input read it already quantized.
    assert bits['layer2.0.conv1'] == (4, None)
    assert bits['layer2.0.downsample.0'] == (4, None)
    assert bits['layer2.0.conv2'] == (4, 4)
    assert bits['conv1'] == (8, None)


def test_paper_placement_keeps_pre_add_outputs_float():
    model = _backbone(QuantResNet_CIFAR, CIFAR18, 'paper', 4, 4)
    active = {n for n, q in free_activation_quantizers(model) if q.bits}
    assert not any('branch_quant' in n or 'shortcut_quant' in n
                   for n in active)
    assert len([n for n in active if n.endswith('output_quant')]) == 8


@pytest.mark.parametrize('trained,evaluated', [('inputs', 'integer'),
                                               ('integer', 'paper'),
                                               ('paper', 'inputs')])
def test_checkpoint_of_one_placement_evaluates_in_another(trained, evaluated):
    source = _backbone(QuantResNet_CIFAR, CIFAR18, trained, 4, 4)
    target = QuantResNet_CIFAR(**CIFAR18, w_bits=4, a_bits=4,
                               placement=evaluated)
    target.eval()
    target.load_state_dict(source.state_dict(), strict=True)
    calib, images = _images(1), _images(2)
    calibrate(target, [calib])
    with torch.no_grad(), quantizing(target):
        out = target(images)[-1]
    direct = _backbone(QuantResNet_CIFAR, CIFAR18, evaluated, 4, 4)
    calibrate(direct, [calib])
    with torch.no_grad(), quantizing(direct):
        assert torch.equal(out, direct(images)[-1])


def test_float_bits_are_the_float_network_in_every_placement():
    ref = _backbone(QuantResNet_CIFAR, CIFAR18, 'inputs', 0, 0)
    x = _images(3)
    with torch.no_grad():
        expected = ref(x)[-1]
        for placement in ('paper', 'integer'):
            model = _backbone(QuantResNet_CIFAR, CIFAR18, placement, 0, 0)
            assert torch.equal(model(x)[-1], expected)


def test_unknown_placement_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="inputs, paper, integer"):
        check_placement('outputs')
    with pytest.raises(ValueError, match='placement'):
        QuantResNet_CIFAR(**CIFAR18, w_bits=4, a_bits=4, placement='int')


@pytest.mark.parametrize('model_cfg,expected', [
    (dict(backbone=dict(type='ResNet_CIFAR')), 'integer'),
    (dict(backbone=dict(type='ResNet_CIFAR'), quant_cfg=dict(w_bits=4)),
     'inputs'),
    (dict(backbone=dict(type='mmpretrain.QuantResNet')), 'inputs'),
    (dict(backbone=dict(type='ResNet_CIFAR'),
          quant_cfg=dict(placement='paper')), 'paper'),
    (dict(backbone=dict(type='QuantResNet', placement='integer')), 'integer'),
])
def test_recorded_placement_keeps_the_meaning_of_old_configs(model_cfg,
                                                             expected):
    """Float models are evaluated with the default (integer); a quantized
    config that names no placement was built, and is evaluated, with
    ``inputs``, the network before the option existed."""
    from ssql_mm.models.pretrained import recorded_placement
    assert recorded_placement(model_cfg) == expected
