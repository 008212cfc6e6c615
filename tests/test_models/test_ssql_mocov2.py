"""SSQL-MoCo v2: float key encoder, one enqueue per step, the spec's loss,
MoCo compatibility."""
import copy

import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmpretrain.registry import MODELS

import ssql_mm  # noqa: F401
from ssql_mm.checkpoint import export_backbone
from ssql_mm.quantization import (fake_quantize_weight, fake_quantizers,
                                  observing, quant_layers, quantizing,
                                  set_bits)

CONFIG = 'configs/ssql/ssql-mocov2_resnet18-w16_1xb128-coslr-2500it_cifar10.py'
FULL_CONFIG = 'configs/ssql/ssql-mocov2_resnet18_4xb128-coslr-400e_cifar10.py'
FLOAT_CFG = dict(w_bits=0, a_bits=0, backbone_overrides=[], neck_overrides=[])
BATCH = 4


def build(config: str = CONFIG, **overrides):
    model_cfg = copy.deepcopy(Config.fromfile(config).model)
    model_cfg.pop('data_preprocessor')
    model_cfg.update(overrides)
    if model_cfg.type == 'MoCo':
        model_cfg.pop('quant_cfg')
    torch.manual_seed(0)
    return MODELS.build(model_cfg).train()


def views(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(BATCH, 3, 32, 32, generator=g) for _ in range(2)]


def record_enqueued(model, monkeypatch):
    """List that receives the keys of every call to the enqueue."""
    calls = []
    enqueue = model._dequeue_and_enqueue

    def spy(keys):
        calls.append(keys.clone())
        enqueue(keys)

    monkeypatch.setattr(model, '_dequeue_and_enqueue', spy)
    return calls


def test_key_encoder_is_float_and_an_ema_of_the_float_weights(repo_root,
                                                             monkeypatch):
    monkeypatch.chdir(repo_root)
    model = build()
    key_encoder = model.encoder_k.module
    assert not fake_quantizers(key_encoder)
    assert not list(quant_layers(key_encoder))
    assert type(key_encoder[0].conv1) is torch.nn.Conv2d
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    set_bits(model, 2, 4)
    sum(model.loss(views(), None).values()).backward()
    online = dict(model.float_encoder().named_parameters())
    for name, param in key_encoder.named_parameters():   # the first update copies
        assert torch.equal(param, online[name]), name
    conv = model.backbone.layer2[0].conv1.weight
    assert not torch.equal(key_encoder[0].layer2[0].conv1.weight,
                           fake_quantize_weight(conv.detach(), 2))

    optimizer.step()
    before = {k: v.clone() for k, v in key_encoder.named_parameters()}
    model.loss(views(), None)
    for name, param in key_encoder.named_parameters():
        expected = before[name] + 0.001 * (online[name].detach() - before[name])
        torch.testing.assert_close(param, expected, rtol=1e-6, atol=1e-6)
        assert not torch.equal(param, before[name])
    # BatchNorm statistics were synced by name (quantizer ranges skipped),
    # then moved by the one key pass.
    online_bufs = dict(model.float_encoder().named_buffers())
    for name, buf in key_encoder.named_buffers():
        if name.endswith('num_batches_tracked'):
            assert buf == online_bufs[name] + 1, name


def test_queue_receives_one_batch_of_float_keys_per_step(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    model = build()
    calls = record_enqueued(model, monkeypatch)
    queue0 = model.queue.clone()
    for step, bits in enumerate(((3, 4), (8, 8))):
        set_bits(model, *bits)
        im_q, im_k = views(seed=step)
        model.loss([im_q, im_k], None)
        assert len(calls) == step + 1
        assert int(model.queue_ptr) == (step + 1) * BATCH
        with torch.no_grad():  # the key: float key encoder, normalised
            key = F.normalize(model.encoder_k(im_k)[0], dim=1)
        torch.testing.assert_close(calls[-1], key)
        block = slice(step * BATCH, (step + 1) * BATCH)
        assert torch.equal(model.queue[:, block], calls[-1].t())
    assert torch.equal(model.queue[:, 2 * BATCH:], queue0[:, 2 * BATCH:])


def test_loss_is_the_spec_formula(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    model = build()
    set_bits(model, 3, 5)
    twin = copy.deepcopy(model)
    calls = record_enqueued(model, monkeypatch)
    queue = model.queue.clone()
    im_q, im_k = views()
    losses = model.loss([im_q, im_k], None)
    key = calls[0]

    encoder = (twin.backbone, twin.neck)
    with observing(encoder):
        q_f = F.normalize(twin.neck(twin.backbone(im_q))[0], dim=1)
    with quantizing(encoder):
        q = F.normalize(twin.neck(twin.backbone(im_q))[0], dim=1)

    def info_nce(query):
        logits = torch.cat([(query * key).sum(1, keepdim=True), query @ queue],
                           dim=1) / 0.2
        return F.cross_entropy(logits, torch.zeros(BATCH, dtype=torch.long))

    torch.testing.assert_close(losses['loss_fp'], 0.5 * info_nce(q_f))
    torch.testing.assert_close(losses['loss_q'], 0.5 * info_nce(q))
    assert not torch.allclose(q_f, q)


def test_float_bits_reduce_to_mmpretrain_moco(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    moco = build(type='MoCo')
    ssql = build(quant_cfg=FLOAT_CFG)
    ssql.load_state_dict(moco.state_dict(), strict=True)
    for step in range(2):
        torch.manual_seed(step)          # the key batch shuffle
        expected = moco.loss(views(seed=step), None)['loss']
        torch.manual_seed(step)
        losses = ssql.loss(views(seed=step), None)
        assert torch.equal(losses['loss_fp'] + losses['loss_q'], expected)
    assert torch.equal(ssql.queue, moco.queue)
    assert torch.equal(ssql.queue_ptr, moco.queue_ptr)


def test_gradients_reach_online_weights_through_both_terms(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    model = build()
    set_bits(model, 4, 4)
    losses = model.loss(views(), None)
    weights = [model.backbone.layer3[1].conv2.weight, model.neck.mlp[0].weight,
               model.neck.mlp[2].weight]
    grads_fp = torch.autograd.grad(losses['loss_fp'], weights, retain_graph=True)
    grads_q = torch.autograd.grad(losses['loss_q'], weights)
    for g_fp, g_q in zip(grads_fp, grads_q):
        assert g_fp.abs().sum() > 0 and g_q.abs().sum() > 0
        assert not torch.allclose(g_fp, g_q)
    assert not any(p.requires_grad for p in model.encoder_k.parameters())


def test_state_dict_is_mmpretrain_moco_and_its_backbone_loads_quantized(
        repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    ssql = build(FULL_CONFIG)
    moco = build(FULL_CONFIG, type='MoCo')
    assert type(moco).__name__ == 'MoCo'
    assert list(ssql.state_dict()) == list(moco.state_dict())
    moco.load_state_dict(ssql.state_dict(), strict=True)
    ssql.load_state_dict(moco.state_dict(), strict=True)
    backbone, report = export_backbone(dict(state_dict=ssql.state_dict()),
                                       fmt='mmpretrain')
    assert {'encoder_k.steps', 'queue', 'queue_ptr'} <= set(report.dropped)
    quant = MODELS.build(dict(type='QuantResNet_CIFAR', depth=18, w_bits=4,
                              a_bits=4))
    quant.load_state_dict(backbone, strict=True)
    torch.testing.assert_close(quant.conv1.weight, ssql.backbone.conv1.weight)
