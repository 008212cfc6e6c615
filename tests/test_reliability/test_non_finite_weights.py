"""NaN / inf weights are refused through the Python API as through the tools:
``load_pretrained``, which the sweep, the exporter, the mixed-precision search
and ``get_model`` all read checkpoints with, raises one line naming the file,
the tensor and the fix (issue 21)."""
import pytest
import torch

import ssql_mm.evaluation.sweep
from reliability_utils import write_backbone_checkpoint
from ssql_mm.checkpoint import CorruptCheckpointError
from ssql_mm.deploy import export_checkpoint
from ssql_mm.evaluation import SweepConfig, run_bit_sweep
from ssql_mm.models.pretrained import load_pretrained

NAMED = 'backbone.layer2.0.conv1.weight (1 NaN, 0 inf)'


@pytest.fixture
def nan_checkpoint(tmp_path) -> str:
    return write_backbone_checkpoint(tmp_path / 'nan.pth', non_finite=True)


def _check_message(err: pytest.ExceptionInfo, path: str) -> None:
    message = str(err.value)
    assert '\n' not in message
    assert path in message and 'not finite: 2 tensor(s)' in message
    assert NAMED in message and 'Use an earlier checkpoint' in message


def test_load_pretrained_refuses_non_finite_weights(nan_checkpoint):
    with pytest.raises(CorruptCheckpointError) as err:
        load_pretrained(nan_checkpoint)
    _check_message(err, nan_checkpoint)


def test_finite_weights_still_load(tmp_path):
    path = write_backbone_checkpoint(tmp_path / 'ssl.pth')
    backbone = load_pretrained(path)
    assert all(torch.isfinite(v).all() for v in backbone.state_dict.values()
               if v.is_floating_point())


def test_export_checkpoint_refuses_non_finite_weights(tmp_path,
                                                      nan_checkpoint):
    out = tmp_path / 'model.onnx'
    with pytest.raises(CorruptCheckpointError) as err:
        export_checkpoint(nan_checkpoint, str(out), bits='fp')
    _check_message(err, nan_checkpoint)
    assert not out.exists()


def test_run_bit_sweep_refuses_non_finite_weights_before_images(
        monkeypatch, cifar_subset, nan_checkpoint):

    def must_not_run(*args, **kwargs):
        raise AssertionError('images were read before the weights check')

    monkeypatch.setattr(ssql_mm.evaluation.sweep, 'load_split', must_not_run)
    with pytest.raises(CorruptCheckpointError) as err:
        run_bit_sweep([nan_checkpoint], cifar_subset, ['fp', '4/4'],
                      SweepConfig(linear=False))
    _check_message(err, nan_checkpoint)


def test_export_checkpoint_refuses_a_non_finite_head(tmp_path):
    # ResNet_CIFAR-18 at 8 base channels gives 64 features.
    backbone = write_backbone_checkpoint(tmp_path / 'ssl.pth')
    head = tmp_path / 'head.pth'
    weight = torch.zeros(10, 64)
    weight[3, 5] = float('nan')
    torch.save({'state_dict': {'head.fc.weight': weight,
                               'head.fc.bias': torch.zeros(10)}}, head)
    out = tmp_path / 'model.onnx'
    with pytest.raises(CorruptCheckpointError) as err:
        export_checkpoint(backbone, str(out), bits='fp', head=str(head))
    message = str(err.value)
    assert '\n' not in message and str(head) in message
    assert 'head.fc.weight (1 NaN, 0 inf)' in message
    assert not out.exists()
