"""QuantCalibrationHook with a post-training quantization method."""
from types import SimpleNamespace

import pytest
import torch

from ssql_mm.engine.hooks import QuantCalibrationHook
from ssql_mm.quantization import quant_layers

PTQ = 'brecq:iters=4,images=8,batch_size=4'


def _features(model, x):
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(x)[0]
    assert feats.abs().sum() > 0  # a collapsed network would prove nothing
    return feats


def _images():
    # the calibration images are unnormalised 0-255 values
    gen = torch.Generator().manual_seed(5)
    return torch.rand(2, 3, 16, 16, generator=gen) * 255


def test_hook_reconstructs_bakes_and_keeps_a_restored_result(make_classifier,
                                                            make_loader):
    model = make_classifier()
    before = {n: l.weight.detach().clone()
              for n, l in quant_layers(model.backbone)}
    hook = QuantCalibrationHook(num_batches=2, ptq=PTQ)
    hook.before_test(SimpleNamespace(model=model,
                                     train_dataloader=make_loader()))
    layers = dict(quant_layers(model.backbone))
    assert all(l.weight_quant.frozen for l in layers.values())
    assert any(not torch.equal(before[n], l.weight) for n, l in layers.items())
    x = _images()
    baked = _features(model, x)
    # a second stage keeps the result instead of reconstructing again
    hook.before_val(SimpleNamespace(model=model,
                                    train_dataloader=make_loader(1)))
    assert torch.equal(_features(model, x), baked)
    # the result is restored from a checkpoint and kept by the hook
    restored = make_classifier(seed=1)
    restored.load_state_dict(model.state_dict(), strict=True)
    QuantCalibrationHook(num_batches=2, ptq=PTQ).before_test(
        SimpleNamespace(model=restored, train_dataloader=make_loader(2)))
    assert torch.equal(_features(restored, x), baked)


def test_hook_refuses_ptq_before_quantized_training(make_classifier,
                                                   make_loader):
    hook = QuantCalibrationHook(num_batches=2, ptq='adaround')
    with pytest.raises(ValueError, match='use it in a test config') as err:
        hook.before_train(
            SimpleNamespace(model=make_classifier(),
                            train_dataloader=make_loader()))
    assert '\n' not in str(err.value)
    # a float model trains as before: nothing to calibrate
    hook.before_train(
        SimpleNamespace(model=make_classifier(0, 0),
                        train_dataloader=make_loader()))


@pytest.mark.parametrize('ptq, message', [
    ('adaround:iters=0', 'iters must be a positive int'),
    ('gptq', "Unknown PTQ method 'gptq'"),
])
def test_hook_checks_ptq_at_construction(ptq, message):
    with pytest.raises(ValueError, match=message):
        QuantCalibrationHook(ptq=ptq)


def test_every_rank_takes_rank_0s_reconstruction(monkeypatch, make_classifier,
                                                 make_loader):
    from ssql_mm.engine.hooks import quant_calibration_hook as module
    rank0, rank1 = make_classifier(), make_classifier(seed=1)
    QuantCalibrationHook(num_batches=2, ptq=PTQ).before_test(
        SimpleNamespace(model=rank0, train_dataloader=make_loader(0)))
    QuantCalibrationHook(num_batches=2, ptq=PTQ).before_test(
        SimpleNamespace(model=rank1, train_dataloader=make_loader(1)))
    x = _images()
    assert not torch.equal(_features(rank0, x), _features(rank1, x))
    sent = []
    monkeypatch.setattr(module, 'get_world_size', lambda: 2)
    monkeypatch.setattr(module, 'broadcast',
                        lambda tensor, src: sent.append(tensor.clone()))
    module.share_reconstruction(rank0)
    received = iter(sent)
    monkeypatch.setattr(module, 'broadcast',
                        lambda tensor, src: tensor.copy_(next(received)))
    module.share_reconstruction(rank1)
    assert torch.equal(_features(rank0, x), _features(rank1, x))
