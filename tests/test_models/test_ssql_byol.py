"""SSQL-BYOL: float EMA target, the loss as in the spec, BYOL compatibility."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmpretrain.registry import MODELS

import ssql_mm  # noqa: F401
from ssql_mm.checkpoint import export_backbone
from ssql_mm.quantization import (fake_quantize_weight, fake_quantizers,
                                  observing, quant_layers, quantizing,
                                  set_bits)

CONFIG = 'configs/ssql/ssql-byol_resnet18-w16_1xb128-coslr-2500it_cifar10.py'
FULL_CONFIG = 'configs/ssql/ssql-byol_resnet18_4xb128-coslr-400e_cifar10.py'
FLOAT_CFG = dict(w_bits=0, a_bits=0, backbone_overrides=[], neck_overrides=[])


def build(config: str = CONFIG, **overrides):
    model_cfg = copy.deepcopy(Config.fromfile(config).model)
    model_cfg.pop('data_preprocessor')
    model_cfg.update(overrides)
    if model_cfg.type == 'BYOL':
        model_cfg.pop('quant_cfg')
    torch.manual_seed(0)
    return MODELS.build(model_cfg).train()


def views(batch: int = 4):
    g = torch.Generator().manual_seed(1)
    return [torch.randn(batch, 3, 32, 32, generator=g) for _ in range(2)]


def online_state(model):
    """Float parameters and BatchNorm buffers of backbone + neck, by name."""
    state = dict(model.float_encoder().named_parameters())
    for name, buf in model.float_encoder().named_buffers():
        if '_quant.' not in name:
            state[name] = buf
    return state


@pytest.fixture
def max_iters():
    """The run length CosineEMA reads (the Runner sets it in training)."""
    hub = MessageHub.get_current_instance()
    previous = hub.runtime_info.get('max_iters')
    hub.update_info('max_iters', 10)
    yield 10
    if previous is None:
        hub.runtime_info.pop('max_iters', None)
    else:
        hub.update_info('max_iters', previous)


def test_target_is_float_and_an_ema_of_the_float_weights(repo_root, monkeypatch,
                                                        max_iters):
    monkeypatch.chdir(repo_root)
    model = build()
    target = model.target_net.module
    assert not fake_quantizers(target) and not list(quant_layers(target))
    assert type(target[0].conv1) is torch.nn.Conv2d
    # The target's state right after each update (its own forward passes
    # then move its BatchNorm statistics on).
    updated = {}
    update = model.target_net.update_parameters

    def spy(encoder):
        update(encoder)
        updated.update({k: v.detach().clone()
                        for k, v in target.state_dict().items()})

    monkeypatch.setattr(model.target_net, 'update_parameters', spy)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    set_bits(model, 2, 4)
    sum(model.loss(views(), None).values()).backward()
    # First update: a copy of the float weights (not of the 2-bit ones) and
    # of the online BatchNorm statistics, matched by name.
    online = online_state(model)
    assert set(online) == set(updated)
    for name, value in online.items():
        assert torch.equal(updated[name], value), name
    conv = model.backbone.layer2[0].conv1.weight
    assert not torch.equal(target[0].layer2[0].conv1.weight,
                           fake_quantize_weight(conv.detach(), 2))

    optimizer.step()
    before = dict(updated)
    set_bits(model, 5, 6)
    model.loss(views(), None)
    # CosineEMA after one step: m = 0.01 * (cos(pi * 1 / max_iters) + 1) / 2
    m = 0.01 * (math.cos(math.pi / max_iters) + 1) / 2
    online = online_state(model)
    for name, param in target.named_parameters():
        expected = before[name] * (1 - m) + online[name].detach() * m
        torch.testing.assert_close(param, expected, rtol=1e-6, atol=1e-6)
        assert not torch.equal(param, before[name])
    for name, buf in target.named_buffers():
        assert torch.equal(updated[name], online[name]), name


def test_loss_is_the_spec_formula(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    model = build()
    set_bits(model, 3, 5)
    twin = copy.deepcopy(model)
    losses = model.loss(views(), None)

    # First step: the target is the online float encoder, so its projections
    # are the float online ones. D(p, z) = -cos(p, z).
    def dist(p, z):
        return -F.cosine_similarity(p, z, dim=1).mean()

    encoder = (twin.backbone, twin.neck)
    with observing(encoder):
        z1, z2 = (twin.neck(twin.backbone(v))[0] for v in views())
    with quantizing(encoder):
        z1q, z2q = (twin.neck(twin.backbone(v))[0] for v in views())
    pred = twin.head.predictor
    l_fp = 2 * (dist(pred([z1])[0], z2) + dist(pred([z2])[0], z1))
    l_q = 2 * (dist(pred([z1q])[0], z2) + dist(pred([z2q])[0], z1))
    torch.testing.assert_close(losses['loss_fp'], 0.5 * l_fp)
    torch.testing.assert_close(losses['loss_q'], 0.5 * l_q)
    assert not torch.allclose(l_fp, l_q)


def test_float_bits_reduce_to_mmpretrain_byol(repo_root, monkeypatch, max_iters):
    monkeypatch.chdir(repo_root)
    byol = build(type='BYOL')
    ssql = build(quant_cfg=FLOAT_CFG)
    ssql.load_state_dict(byol.state_dict(), strict=True)
    for _ in range(2):      # the copy, then a real EMA update
        expected = byol.loss(views(), None)['loss']
        losses = ssql.loss(views(), None)
        assert torch.equal(losses['loss_fp'] + losses['loss_q'], expected)
    # Same target weights (BatchNorm statistics differ: the online encoder
    # of SSQL also runs the quantized passes).
    for (name, a), b in zip(byol.target_net.named_parameters(),
                            ssql.target_net.parameters()):
        assert torch.equal(a, b), name


def test_gradients_reach_online_weights_through_both_terms(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    model = build()
    set_bits(model, 4, 4)
    losses = model.loss(views(), None)
    weights = [model.backbone.layer3[1].conv2.weight, model.neck.fc0.weight,
               model.head.predictor.fc0.weight]
    grads_fp = torch.autograd.grad(losses['loss_fp'], weights, retain_graph=True)
    grads_q = torch.autograd.grad(losses['loss_q'], weights)
    for g_fp, g_q in zip(grads_fp, grads_q):
        assert g_fp.abs().sum() > 0 and g_q.abs().sum() > 0
        assert not torch.allclose(g_fp, g_q)
    assert not any(p.requires_grad for p in model.target_net.parameters())


def test_state_dict_is_mmpretrain_byol_and_its_backbone_loads_quantized(
        repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    ssql = build(FULL_CONFIG)
    byol = build(FULL_CONFIG, type='BYOL')
    assert type(byol).__name__ == 'BYOL'
    assert list(ssql.state_dict()) == list(byol.state_dict())
    byol.load_state_dict(ssql.state_dict(), strict=True)
    ssql.load_state_dict(byol.state_dict(), strict=True)
    backbone, report = export_backbone(dict(state_dict=ssql.state_dict()),
                                       fmt='mmpretrain')
    assert any(k.startswith('target_net.') for k in report.dropped)
    quant = MODELS.build(dict(type='QuantResNet_CIFAR', depth=18, w_bits=4,
                              a_bits=4))
    quant.load_state_dict(backbone, strict=True)
    torch.testing.assert_close(quant.conv1.weight, ssql.backbone.conv1.weight)
