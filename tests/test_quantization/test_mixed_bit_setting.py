"""Per-layer bit settings: the file, its checks, and the model it builds."""
import json
import os.path as osp

import pytest
import torch
from mmpretrain.models.backbones import ResNet_CIFAR
from mmpretrain.registry import MODELS

import ssql_mm.models  # noqa: F401
from ssql_mm.models.bit_setting import (BitSetting, LayerBits,
                                        load_bit_setting, parse_bit_setting,
                                        parse_bit_settings,
                                        resolve_bit_setting, save_bit_setting)
from ssql_mm.models.pretrained import PretrainedBackbone
from ssql_mm.quantization import (ActivationFakeQuantize, WeightFakeQuantize,
                                  calibrate)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ARCH = dict(depth=18, stem_channels=4, base_channels=4)
SETTING = BitSetting(
    4, 4, (LayerBits('layer1.0.conv1', w=2, a=8),
           LayerBits('layer2.*', w=8),
           LayerBits('layer1.1.output_quant', a=6),
           LayerBits('layer3.0.conv2', a=0)), 'paper')


def write(path, text):
    path.write_text(text)
    return str(path)


def one_line(err):
    message = str(err.value)
    assert '\n' not in message
    return message


@pytest.mark.parametrize('suffix', ['.yml', '.json'])
def test_bits_file_round_trips(tmp_path, suffix):
    path = tmp_path / f'bits{suffix}'
    save_bit_setting(SETTING, path, info=dict(method='hessian'))
    loaded = load_bit_setting(path)
    assert loaded == SETTING
    assert loaded.name == 'mixed:bits' and loaded.is_mixed
    assert parse_bit_setting(f'mixed:{path}') == SETTING
    if suffix == '.json':
        data = json.loads(path.read_text())
        assert data['layers']['layer3.0.conv2'] == {'a': 'fp'}
        assert data['info'] == {'method': 'hessian'}
    save_bit_setting(loaded, tmp_path / f'again{suffix}')
    assert load_bit_setting(tmp_path / f'again{suffix}') == SETTING


def test_uniform_settings_are_unchanged():
    assert parse_bit_setting('4/4') == BitSetting(4, 4)
    assert parse_bit_setting('fp').is_float
    assert parse_bit_setting('2/4').name == '2w4a'
    assert not BitSetting(4, 4).is_mixed


def test_hand_written_yaml_with_fp_and_defaults(tmp_path):
    path = write(tmp_path / 'hand.yaml', 'base: 4/4\nlayers:\n'
                 '  conv1: {a: fp}\n  layer4.*: {w: 8, a: 8}\n')
    setting = load_bit_setting(path)
    assert setting.placement is None
    assert setting.layers == (LayerBits('conv1', a=0),
                              LayerBits('layer4.*', w=8, a=8))
    assert setting.overrides() == [
        dict(name='conv1', a_bits=0),
        dict(name='layer4.*', w_bits=8, a_bits=8)]
    assert parse_bit_settings(['4/4', f'mixed:{path}'])[1].name == \
        'mixed:hand'


@pytest.mark.parametrize('text,match', [
    ('layers: {conv1: {w: 4}}\n', "no 'base'.*add e.g. 'base: 4/4'"),
    ('base: 4/4\nlayers: {conv1: {w: 1}}\n',
     r"layer 'conv1' w is 1; use an integer in \[2, 16\], or 0 / fp"),
    ('base: 4/4\nlayers: {conv1: {a: 17}}\n', r'a is 17; use an integer'),
    ('base: 4/4\nlayers: {conv1: {w: true}}\n', 'w is True; use an integer'),
    ('base: 4/4\nlayers: {conv1: {bits: 4}}\n',
     r"keys \['bits'\]; give w .* and/or a"),
    ('base: 4/4\nlayers: {conv1: 4}\n', r'must map to \{w: BITS, a: BITS\}'),
    ('base: 9/x\n', "base: Unknown bit setting '9/x'"),
    ('base: 4/4\nlayer: {}\n', r"unknown key\(s\) \['layer'\]; allowed"),
    ('base: 4/4\nplacement: outputs\n', "unknown placement 'outputs'"),
    ('base: [4, 4\n', 'not valid YAML / JSON .*fix the file'),
    ('- 4/4\n', 'must be a mapping with base, layers'),
])
def test_bad_files_give_one_line_errors_naming_the_fix(tmp_path, text,
                                                       match):
    path = write(tmp_path / 'bad.yml', text)
    with pytest.raises(ValueError, match=match) as err:
        load_bit_setting(path)
    assert str(path) in one_line(err)


def test_missing_file_and_empty_mixed_prefix(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist; pass a '
                       'file written by tools/mixed_precision.py'):
        parse_bit_setting(f'mixed:{tmp_path}/nope.yml')
    with pytest.raises(ValueError, match='names no file'):
        parse_bit_setting('mixed:')


def build(setting_or_file, placement='paper', **kwargs):
    torch.manual_seed(0)
    return MODELS.build(dict(type='QuantResNet_CIFAR', **ARCH,
                             placement=placement, mixed=setting_or_file,
                             **kwargs))


def test_unknown_layer_and_weight_bits_of_an_activation_are_refused(
        tmp_path):
    path = write(tmp_path / 'typo.yml',
                 'base: 4/4\nlayers: {layer9.0.conv1: {w: 2}}\n')
    with pytest.raises(ValueError, match="mixed:typo: layer 'layer9.0.conv1'"
                       ' matches no quantizer.*--list-layers') as err:
        build(path)
    one_line(err)
    path = write(tmp_path / 'act.yml',
                 'base: 4/4\nlayers: {layer1.0.output_quant: {w: 2}}\n')
    with pytest.raises(ValueError, match='activation quantizer and has no '
                       r'weight; give it a only'):
        build(path)


def test_placement_of_the_file_must_be_the_models(tmp_path):
    path = tmp_path / 'paper.yml'
    save_bit_setting(SETTING, path)
    with pytest.raises(ValueError, match="placement 'paper' but the model is "
                       "built under 'inputs'.*--placement paper"):
        build(str(path), placement='inputs')


def test_pinned_layers_stay_pinned_unless_named():
    model = build(SETTING.to_dict())
    modules = dict(model.named_modules())
    # The placement's pinned quantizers are untouched ...
    assert (modules['conv1'].weight_quant.bits,
            modules['conv1'].input_quant.bits) == (8, None)
    assert modules['layer1.0.input_quant'].bits == 8
    assert modules['layer1.1.branch_quant'].bits is None
    assert modules['layer2.0.conv1'].input_quant.bits is None  # reads codes
    # ... the named ones take the file's bits, the rest the base.
    assert model.layer_bits['layer1.0.conv1'] == (2, 8)
    assert model.layer_bits['layer2.1.conv2'] == (8, 4)
    assert model.layer_bits['layer3.0.conv2'] == (4, None)
    assert model.layer_bits['layer3.1.conv2'] == (4, 4)
    assert modules['layer1.1.output_quant'].bits == 6
    assert modules['layer2.0.output_quant'].bits == 4
    # A file that names a pinned layer changes it.
    stem = build(dict(base='4/4', layers={'conv1': {'w': 6}}))
    assert stem.layer_bits['conv1'] == (6, None)


def test_base_comes_from_the_file_or_must_agree_with_w_a_bits():
    assert resolve_bit_setting(None, None, SETTING.to_dict()) == SETTING
    assert resolve_bit_setting(4, 4, dict(layers={'conv1': {'w': 8}})) == \
        BitSetting(4, 4, (LayerBits('conv1', w=8), ))
    with pytest.raises(ValueError, match='w_bits=8, a_bits=8 disagree with '
                       'the base 4/4.*one place'):
        resolve_bit_setting(8, 8, SETTING.to_dict())
    assert build(SETTING.to_dict(), w_bits=4, a_bits=4).layer_bits == \
        build(SETTING.to_dict()).layer_bits


def quantizer_state(model):
    return {name: (type(q).__name__, q.bits, q.fixed)
            for name, q in model.named_modules()
            if isinstance(q, (WeightFakeQuantize, ActivationFakeQuantize))}


def test_config_builds_the_model_the_sweep_builds(tmp_path):
    path = tmp_path / 'bits.yml'
    save_bit_setting(SETTING, path)
    torch.manual_seed(3)
    weights = ResNet_CIFAR(**ARCH).state_dict()
    # A config (what a downstream / linear config writes) ...
    from_config = MODELS.build(dict(type='QuantResNet_CIFAR', **ARCH,
                                    out_indices=(3, ), placement='paper',
                                    mixed=str(path)))
    from_config.load_state_dict(weights)
    from_config.eval()
    # ... and the sweep's rebuild of a checkpoint at mixed:FILE.
    pretrained = PretrainedBackbone('ckpt', dict(type='ResNet_CIFAR', **ARCH),
                                    weights, placement='paper')
    from_sweep = pretrained.build(parse_bit_setting(f'mixed:{path}'))
    assert quantizer_state(from_config) == quantizer_state(from_sweep)
    images = torch.randn(8, 3, 16, 16)
    for model in (from_config, from_sweep):
        calibrate(model, [images])
    with torch.no_grad():
        torch.testing.assert_close(from_config(images)[-1],
                                   from_sweep(images)[-1], rtol=0, atol=0)


@pytest.mark.parametrize('name, placement', [
    ('ssql-simsiam_resnet18-w16_1xb128-coslr-2500it_cifar10', 'integer'),
    ('ssql-simsiam-inputs_resnet18-w16_1xb128-coslr-2500it_cifar10',
     'inputs'),
])
def test_get_model_rebuilds_the_zoo_backbone_at_a_setting(
        tmp_path, monkeypatch, name, placement):
    # get_model builds from the entry's config; the reference from the
    # training config stored in the entry's own shipped file. They agree
    # only if the entry names the config its weights were trained with.
    from ssql_mm.apis import get_model, get_model_entry
    from ssql_mm.models.pretrained import load_pretrained
    monkeypatch.setenv('SSQL_MM_HOME', str(tmp_path / 'home'))
    entry = get_model_entry(name)
    shipped = osp.join(entry.root, entry.weights)
    path = tmp_path / 'bits.yml'
    save_bit_setting(BitSetting(4, 4, (LayerBits('layer4.*', w=8), )), path)
    model = get_model(name, bits=f'mixed:{path}')
    reference = load_pretrained(shipped).build(load_bit_setting(path))
    assert model.placement == reference.placement == placement
    assert quantizer_state(model) == quantizer_state(reference)
    assert model.layer_bits['layer4.1.conv2'] == (8, 4)
    assert model.layer_bits['layer3.1.conv2'] == (4, 4)
    for key, value in reference.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_calibration_fits_each_quantizer_at_its_own_bits():
    # MSE ranges depend on the bits: a per-layer setting must get, for each
    # quantizer, the range a uniform model at that quantizer's bits gets.
    images = torch.randn(8, 3, 16, 16)
    weights = ResNet_CIFAR(**ARCH).state_dict()

    def calibrated(**kwargs):
        model = MODELS.build(dict(type='QuantResNet_CIFAR', **ARCH, **kwargs))
        model.load_state_dict(weights)
        calibrate(model, [images], observer='mse')
        return {name: (float(q.observer.min_val), float(q.observer.max_val))
                for name, q in model.named_modules()
                if isinstance(q, ActivationFakeQuantize) and q.has_range}

    mixed = calibrated(mixed=dict(base='8/8',
                                  layers={'layer2.0.conv2': {'a': 2}}))
    low, high = calibrated(w_bits=2, a_bits=2), calibrated(w_bits=8, a_bits=8)
    assert mixed['layer2.0.conv2.input_quant'] == \
        low['layer2.0.conv2.input_quant'] != \
        high['layer2.0.conv2.input_quant']
    assert mixed['layer3.0.conv2.input_quant'] == \
        high['layer3.0.conv2.input_quant']


def test_transfer_ptq_config_builds_the_per_layer_setting(tmp_path,
                                                          monkeypatch):
    from mmengine.config import Config

    from ssql_mm.evaluation import transfer
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs', 'benchmarks', 'classification',
        'resnet18-cifar-w16_1xb64-finetune-steplr-10e_cifar10-subset.py'))
    built = {}

    class Runner:
        def __init__(self, cfg):
            built['backbone'] = MODELS.build(cfg.model.backbone)

        def test(self):
            return {transfer.TOP1_KEY: 0.}

    monkeypatch.setattr(transfer, '_runner',
                        lambda cfg, work_dir, name: Runner(cfg))
    path = tmp_path / 'bits.yml'
    save_bit_setting(BitSetting(4, 4, (LayerBits('layer4.*', w=8), ),
                                'integer'), path)
    transfer.ptq_test(cfg, 'finetuned.pth', parse_bit_setting(f'mixed:{path}'),
                      'minmax', str(tmp_path))
    bits = built['backbone'].layer_bits
    assert bits['layer4.1.conv2'] == (8, 4)
    assert bits['layer3.1.conv2'] == (4, 4)
    assert bits['conv1'] == (8, None)
