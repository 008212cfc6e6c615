"""Faster R-CNN and FCN with a 4w4a QuantResNet: one training step and one
prediction on CPU, with the bits checked in the tensors themselves."""
import pytest
import torch
from downstream_utils import build_model, config
from mmengine.optim import OptimWrapper
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

import ssql_mm  # noqa: F401
from ssql_mm.quantization import calibrate, quant_layers

W_BITS = A_BITS = 4


def _record_levels(backbone):
    """Hook every quantizer of ``backbone``; return the list the hooks fill
    with (name, kind, distinct values per channel or per tensor)."""
    seen = []

    def hook(name, kind):
        def record(module, args, out):
            if not module.active:
                return
            if kind == 'w':
                levels = max(len(torch.unique(c)) for c in out.detach().flatten(1))
            else:
                levels = len(torch.unique(out.detach()))
            seen.append((name, kind, levels, module.bits))
        return record

    handles = []
    for name, layer in quant_layers(backbone):
        handles.append(layer.weight_quant.register_forward_hook(hook(name, 'w')))
        handles.append(layer.input_quant.register_forward_hook(hook(name, 'a')))
    return seen, handles


def _check_levels(backbone, seen):
    followers = {n for n, _ in quant_layers(backbone)} - set(
        backbone.quant_report.overridden)
    hit = {(n, k) for n, k, _, _ in seen}
    assert {(n, k) for n in followers for k in 'wa'} <= hit
    for name, kind, levels, bits in seen:
        if name in followers:
            assert bits == (W_BITS if kind == 'w' else A_BITS)
        assert levels <= 2**bits, (name, kind, levels, bits)


def _step_and_predict(model, data, forward):
    calibrate(model, [data], 1, forward)
    seen, handles = _record_levels(model.backbone)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    model.train()
    losses = model.train_step(data, optim)
    assert losses and all(torch.isfinite(v).all() for v in losses.values())
    _check_levels(model.backbone, seen)
    model.eval()
    with torch.no_grad():
        preds = model.test_step(data)
    for h in handles:
        h.remove()
    return preds


def _tensor_forward(model, batch):
    data = model.data_preprocessor(batch, False)
    return model(**data, mode='tensor')


def test_faster_rcnn_4w4a_train_step_and_predict():
    from mmdet.testing import demo_mm_inputs
    cfg = config(
        'configs/benchmarks/mmdet/faster-rcnn_ssql-r50-4w4a_fpn_1x_coco.py')
    cfg.merge_from_dict({
        'model.backbone.depth': 18,
        'model.backbone.init_cfg': None,
        'model.neck.in_channels': [64, 128, 256, 512],
        'model.neck.out_channels': 32,
        'model.rpn_head.in_channels': 32,
        'model.rpn_head.feat_channels': 32,
        'model.roi_head.bbox_roi_extractor.out_channels': 32,
        'model.roi_head.bbox_head.in_channels': 32,
        'model.roi_head.bbox_head.fc_out_channels': 64,
    })
    model = build_model(cfg, 'mmdet')
    torch.manual_seed(0)
    data = demo_mm_inputs(2, [[3, 64, 64], [3, 64, 64]], num_items=[2, 1],
                          num_classes=80, use_box_type=True)
    data = dict(inputs=data['inputs'], data_samples=data['data_samples'])
    stem = model.backbone.conv1.weight.detach().clone()
    layer1 = model.backbone.layer1[0].conv1.weight.detach().clone()
    layer2 = model.backbone.layer2[0].conv1.weight.detach().clone()
    bn_mean = model.backbone.layer2[0].bn1.running_mean.clone()
    preds = _step_and_predict(model, data, _tensor_forward)
    # frozen_stages=1 keeps the stem and layer1; norm_eval keeps BN stats.
    assert torch.equal(model.backbone.conv1.weight, stem)
    assert torch.equal(model.backbone.layer1[0].conv1.weight, layer1)
    assert not torch.equal(model.backbone.layer2[0].conv1.weight, layer2)
    assert torch.equal(model.backbone.layer2[0].bn1.running_mean, bn_mean)
    assert len(preds) == 2
    assert all('bboxes' in p.pred_instances for p in preds)


def test_fcn_4w4a_train_step_and_predict():
    cfg = config('configs/benchmarks/mmseg/'
                 'fcn_ssql-r50-d8-4w4a_4xb4-20k_voc12aug-512x512.py')
    bn = dict(type='BN', requires_grad=True)
    cfg.merge_from_dict({
        'model.backbone.depth': 18,
        'model.backbone.init_cfg': None,
        'model.backbone.norm_cfg': bn,
        'model.decode_head.in_channels': 512,
        'model.decode_head.channels': 32,
        'model.decode_head.norm_cfg': bn,
        'model.auxiliary_head.in_channels': 256,
        'model.auxiliary_head.channels': 16,
        'model.auxiliary_head.norm_cfg': bn,
        'model.data_preprocessor.size': (64, 64),
    })
    model = build_model(cfg, 'mmseg')
    torch.manual_seed(0)
    samples = []
    for _ in range(2):
        sample = SegDataSample(metainfo=dict(
            img_shape=(64, 64), ori_shape=(64, 64), pad_shape=(64, 64)))
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, 21, (1, 64, 64)))
        samples.append(sample)
    data = dict(inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)
                        for _ in range(2)],
                data_samples=samples)
    # d8: layer3/layer4 keep the resolution and dilate (BasicBlock: conv1).
    for layer, dilation in (('layer3', 2), ('layer4', 4)):
        conv = getattr(model.backbone, layer)[0].conv1
        assert conv.stride == (1, 1) and conv.dilation == (dilation, ) * 2
    preds = _step_and_predict(model, data, _tensor_forward)
    assert len(preds) == 2
    assert preds[0].pred_sem_seg.data.shape[-2:] == (64, 64)


def test_quantized_forward_needs_calibration_first():
    cfg = config(
        'configs/benchmarks/mmdet/retinanet_ssql-r50-4w4a_fpn_1x_coco.py')
    cfg.merge_from_dict({'model.backbone.depth': 18,
                         'model.backbone.init_cfg': None})
    backbone = build_model(cfg, 'mmdet', part='backbone')
    with pytest.raises(RuntimeError, match='QuantCalibrationHook'):
        backbone(torch.rand(1, 3, 32, 32))
