"""Every SSQL variant trains under every quantizer placement."""
import copy

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

import ssql_mm  # noqa: F401
from ssql_mm.quantization import free_activation_quantizers, get_bits, set_bits

CONFIGS = {
    'simsiam': 'configs/ssql/ssql-simsiam_resnet18-w16_1xb128-coslr-2500it_cifar10.py',
    'byol': 'configs/ssql/ssql-byol_resnet18-w16_1xb128-coslr-2500it_cifar10.py',
    'mocov2': 'configs/ssql/ssql-mocov2_resnet18-w16_1xb128-coslr-2500it_cifar10.py',
}


def build(variant: str, placement: str):
    cfg = Config.fromfile(CONFIGS[variant])
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.quant_cfg = dict(model_cfg.get('quant_cfg') or {},
                               placement=placement)
    if 'queue_len' in model_cfg:
        model_cfg.queue_len = 16
    torch.manual_seed(0)
    return MODELS.build(model_cfg)


@pytest.mark.parametrize('variant', sorted(CONFIGS))
@pytest.mark.parametrize('placement', ['paper', 'integer'])
def test_training_step_under_placement(repo_root, monkeypatch, variant,
                                       placement):
    monkeypatch.chdir(repo_root)
    model = build(variant, placement)
    set_bits(model, 3, 4)
    block_quant = dict(free_activation_quantizers(model.backbone))
    assert block_quant['layer4.1.output_quant'].bits == 4
    assert block_quant['layer1.0.input_quant'].bits == 8
    assert (block_quant['layer2.0.branch_quant'].bits is None) == (
        placement == 'paper')
    assert get_bits(model.backbone)['layer2.0.conv1'] == (3, None)
    # The projector reads pooled codes, as in the official code.
    assert set(get_bits(model.neck).values()) == {(8, None)}
    views = [torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)]
    losses = model.loss(views, None)
    assert set(losses) == {'loss_fp', 'loss_q'}
    assert all(torch.isfinite(v) for v in losses.values())
    assert not torch.isclose(losses['loss_fp'], losses['loss_q'])
    sum(losses.values()).backward()
    assert model.backbone.layer4[1].conv2.weight.grad.abs().sum() > 0
    # The quantized pass read ranges measured by the float pass of this step.
    assert block_quant['layer4.1.output_quant'].has_range
