"""SSQL-SimSiam: the step, the loss as in the spec, and float compatibility."""
import copy

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

import ssql_mm  # noqa: F401
from ssql_mm.quantization import (get_bits, observing, quant_layers,
                                  quantizing, set_bits)

R50_CONFIG = 'configs/ssql_r50.py'
CIFAR_CONFIG = 'configs/ssql/ssql-simsiam_resnet18_4xb128-coslr-400e_cifar10.py'


def build(config: str, **overrides):
    cfg = Config.fromfile(config)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.norm_cfg = dict(type='BN')   # SyncBN needs a process group
    model_cfg.update(overrides)
    if model_cfg.type == 'SimSiam':
        model_cfg.pop('quant_cfg')
    torch.manual_seed(0)
    return MODELS.build(model_cfg)


def test_r50_config_two_loss_steps_at_different_bits(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    model = build(R50_CONFIG)
    views = [torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    results = []
    for w_bits, a_bits in ((2, 4), (8, 8)):
        set_bits(model, w_bits, a_bits)
        losses = model.loss(views, None)
        assert set(losses) == {'loss_fp', 'loss_q'}
        assert all(torch.isfinite(v) for v in losses.values())
        optimizer.zero_grad()
        sum(losses.values()).backward()
        assert model.backbone.layer4[2].conv2.weight.grad.abs().sum() > 0
        assert model.head.predictor.fc0.weight.grad.abs().sum() > 0
        optimizer.step()
        results.append(losses)
    assert get_bits(model.backbone)['layer3.0.conv2'] == (8, 8)
    assert get_bits(model.backbone)['conv1'] == (8, None)


def test_loss_is_the_spec_formula(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    model = build(CIFAR_CONFIG)
    set_bits(model, 3, 4)
    twin = copy.deepcopy(model)              # same weights and BN statistics
    views = [torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)]
    losses = model.loss(views, None)

    # By hand: float targets, quantized predictions, shared float predictor.
    def dist(p, z):
        return -torch.nn.functional.cosine_similarity(p, z.detach(), dim=1).mean()

    encoder = (twin.backbone, twin.neck)
    with observing(encoder):
        z1, z2 = (twin.neck(twin.backbone(v))[0] for v in views)
    with quantizing(encoder):
        z1q, z2q = (twin.neck(twin.backbone(v))[0] for v in views)
    pred = twin.head.predictor
    l_fp = 0.5 * (dist(pred([z1])[0], z2) + dist(pred([z2])[0], z1))
    l_q = 0.5 * (dist(pred([z1q])[0], z2) + dist(pred([z2q])[0], z1))
    torch.testing.assert_close(losses['loss_fp'], 0.5 * l_fp)
    torch.testing.assert_close(losses['loss_q'], 0.5 * l_q)
    assert not torch.allclose(z1, z1q)          # the quantized pass differs


def test_state_dict_is_float_simsiam_both_ways(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    ssql = build(CIFAR_CONFIG).eval()
    simsiam = build(CIFAR_CONFIG, type='SimSiam').eval()
    assert type(simsiam).__name__ == 'SimSiam'
    assert list(ssql.state_dict()) == list(simsiam.state_dict())
    simsiam.load_state_dict(ssql.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ssql.extract_feat(x)[0], simsiam.extract_feat(x)[0])
        torch.testing.assert_close(
            ssql.neck(ssql.backbone(x))[0], simsiam.neck(simsiam.backbone(x))[0])
    ssql.load_state_dict(simsiam.state_dict(), strict=True)
    # and into a plain mmpretrain ResNet backbone
    backbone = MODELS.build(dict(type='ResNet_CIFAR', depth=18))
    backbone.load_state_dict(
        {k[len('backbone.'):]: v for k, v in ssql.state_dict().items()
         if k.startswith('backbone.')}, strict=True)


def test_predictor_stays_float_and_projector_weights_8bit(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    model = build(CIFAR_CONFIG)  # integer placement
    assert not list(quant_layers(model.head))
    # The projector reads the pooled, already quantized block output.
    neck_bits = get_bits(model.neck)
    assert neck_bits == {'fc0': (8, None), 'fc1': (8, None), 'fc2': (8, None)}
    model = build(CIFAR_CONFIG, quant_cfg=dict(placement='inputs'))
    assert get_bits(model.neck) == {
        'fc0': (8, 4), 'fc1': (8, None), 'fc2': (8, None)}


def test_unknown_quant_cfg_key_is_an_error(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    with pytest.raises(KeyError, match="Unknown key\\(s\\) \\['wbits'\\]"):
        build(CIFAR_CONFIG, quant_cfg=dict(wbits=4))
    with pytest.raises(ValueError, match='matches no quantized layer'):
        build(CIFAR_CONFIG, quant_cfg=dict(backbone_overrides=[dict(name='stem.*', w_bits=8)]))
