"""Loading SSQL checkpoints through init_cfg: all keys or a clear error."""
import pytest
import torch
from downstream_utils import build_model, config

import ssql_mm  # noqa: F401
from ssql_mm.checkpoint import PretrainedMismatchError, find_resnet_depth
from ssql_mm.quantization.fake_quantize import ActivationFakeQuantize

DET = 'configs/benchmarks/mmdet/faster-rcnn_ssql-r50-4w4a_fpn_1x_coco.py'
SEG = ('configs/benchmarks/mmseg/'
       'deeplabv3_ssql-r50-d8-4w4a_4xb4-20k_voc12aug-512x512.py')


def _det_cfg(checkpoint, depth=18):
    cfg = config(DET)
    cfg.merge_from_dict({
        'model.backbone.depth': depth,
        'model.backbone.init_cfg.checkpoint': checkpoint,
        'model.neck.in_channels': [64, 128, 256, 512],
    })
    return cfg


def _assert_loaded(backbone, checkpoint):
    state = torch.load(checkpoint)['state_dict']
    own = backbone.state_dict()
    expected = {k[len('backbone.'):]: v for k, v in state.items()
                if k.startswith('backbone.')}
    assert set(own) == set(expected)
    for key, value in own.items():
        assert torch.equal(value, expected[key]), key


def test_detector_loads_every_backbone_key(ssql_checkpoint):
    path = ssql_checkpoint('ResNet', 18)
    model = build_model(_det_cfg(path), 'mmdet')
    model.init_weights()
    _assert_loaded(model.backbone, path)


def test_segmentor_loads_a_deep_stem_checkpoint(ssql_checkpoint):
    path = ssql_checkpoint('ResNetV1c', 18, strides=(1, 2, 1, 1),
                           dilations=(1, 1, 2, 4))
    cfg = config(SEG)
    cfg.merge_from_dict({
        'model.backbone.depth': 18,
        'model.backbone.norm_cfg': dict(type='BN'),
        'model.backbone.init_cfg.checkpoint': path,
    })
    backbone = build_model(cfg, 'mmseg', part='backbone')
    backbone.init_weights()
    _assert_loaded(backbone, path)


def test_pretraining_ranges_are_not_kept(ssql_checkpoint):
    extra = {'backbone.layer2.0.conv1.input_quant.min_val': torch.tensor(-1.),
             'backbone.layer2.0.conv1.input_quant.max_val': torch.tensor(9.)}
    path = ssql_checkpoint('ResNet', 18, extra=extra)
    cfg = _det_cfg(path)
    backbone = build_model(cfg, 'mmdet', part='backbone')
    backbone.init_weights()
    quantizers = [m for m in backbone.modules()
                  if isinstance(m, ActivationFakeQuantize)]
    assert not any(q.frozen or q.has_range for q in quantizers)


def test_depth_mismatch_names_the_fix(ssql_checkpoint):
    path = ssql_checkpoint('ResNet', 18)
    backbone = build_model(_det_cfg(path, depth=50), 'mmdet', part='backbone')
    with pytest.raises(PretrainedMismatchError) as err:
        backbone.init_weights()
    message = str(err.value)
    assert 'missing' in message and path in message
    assert 'ResNet-18' in message and 'model.backbone.depth=18' in message


def test_stem_mismatch_names_the_backbone_type(ssql_checkpoint):
    path = ssql_checkpoint('ResNet', 18)
    cfg = config(SEG)
    cfg.merge_from_dict({'model.backbone.depth': 18,
                         'model.backbone.norm_cfg': dict(type='BN'),
                         'model.backbone.init_cfg.checkpoint': path})
    backbone = build_model(cfg, 'mmseg', part='backbone')
    with pytest.raises(PretrainedMismatchError,
                       match="single 7x7 stem.*'mmpretrain.QuantResNet'"):
        backbone.init_weights()


def test_wrong_prefix_names_the_prefixes_found(ssql_checkpoint):
    cfg = _det_cfg(ssql_checkpoint('ResNet', 18))
    cfg.model.backbone.init_cfg.prefix = 'encoder.'
    backbone = build_model(cfg, 'mmdet', part='backbone')
    with pytest.raises(PretrainedMismatchError,
                       match=r"'encoder\.'.*\['backbone\.', 'head\.', 'neck\.'\]"
                       r'.*init_cfg.prefix'):
        backbone.init_weights()


@pytest.mark.parametrize('depth', [18, 34, 50, 101])
def test_find_resnet_depth(depth):
    from mmpretrain.models.backbones import ResNet
    assert find_resnet_depth(ResNet(depth=depth).state_dict()) == depth
    assert find_resnet_depth(['fc.weight']) is None


def test_missing_prefix_on_a_full_checkpoint_names_the_prefix(ssql_checkpoint):
    cfg = _det_cfg(ssql_checkpoint('ResNet', 18))
    cfg.model.backbone.init_cfg.pop('prefix')
    backbone = build_model(cfg, 'mmdet', part='backbone')
    with pytest.raises(PretrainedMismatchError,
                       match=r"missing[\s\S]*init_cfg.prefix='backbone.'"):
        backbone.init_weights()
