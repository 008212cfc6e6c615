"""The one state-dict helper and the one ResNet layout table."""
import pytest
import torch
from mmpretrain.models.backbones import ResNet, ResNet_CIFAR

from ssql_mm.checkpoint import (RESNET_LAYOUTS, CheckpointMismatchError,
                                check_resnet_depth, find_resnet_depth,
                                infer_resnet_depth, is_range_key,
                                select_prefix, unwrap_state_dict)


def test_unwrap_finds_the_tensors_and_drops_the_ddp_prefix():
    w, b = torch.ones(2), torch.zeros(2)
    runner_file = {'meta': {}, 'state_dict': {'module.fc.weight': w,
                                              'fc.bias': b}}
    assert unwrap_state_dict(runner_file) == {'fc.weight': w, 'fc.bias': b}
    assert unwrap_state_dict({'model': {'x': w}}) == {'x': w}
    assert unwrap_state_dict({'x': w, 'epoch': 3}) == {'x': w}
    with pytest.raises(CheckpointMismatchError, match="'f.pth' holds no"):
        unwrap_state_dict({'epoch': 3}, "'f.pth'")


def test_select_prefix_strips_it_or_names_what_is_there():
    state = {'backbone.conv1.weight': 1, 'neck.fc.weight': 2}
    assert select_prefix(state, 'backbone') == {'conv1.weight': 1}
    assert select_prefix(state, None) == state
    with pytest.raises(CheckpointMismatchError,
                       match=r"'head\.'.*\['backbone\.', 'neck\.'\]\. Fix"):
        select_prefix(state, 'head.', fix='Fix it.')


def test_range_keys():
    assert is_range_key('layer1.0.conv1.input_quant.min_val')
    assert is_range_key('backbone.conv1.input_quant.max_val')
    assert not is_range_key('layer1.0.conv1.weight_quant.min_val')
    assert not is_range_key('layer1.0.conv1.input_quant.min_value')


@pytest.mark.parametrize('depth', sorted(RESNET_LAYOUTS))
def test_every_layout_is_found_from_real_weights(depth):
    keys = ResNet(depth=depth).state_dict()
    assert find_resnet_depth(keys) == infer_resnet_depth(keys) == depth


def test_non_standard_layouts():
    keys = ResNet_CIFAR(depth=18, num_stages=3, out_indices=(2, ),
                        strides=(1, 2, 2), dilations=(1, 1, 1)).state_dict()
    assert find_resnet_depth(keys) is None
    with pytest.raises(CheckpointMismatchError, match=r'\(2, 2, 2\)'):
        infer_resnet_depth(keys)
    with pytest.raises(CheckpointMismatchError, match='no standard ResNet'):
        check_resnet_depth(None, 18)
    with pytest.raises(CheckpointMismatchError, match='--depth 18'):
        check_resnet_depth(18, 50)
    check_resnet_depth(18, None)
