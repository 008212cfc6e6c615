"""Export of a PTQ-reconstructed model (AdaRound, BRECQ, QDrop): the baked
weights, frozen clipping values and step sizes reach the ONNX graph, and the
reconstruction saved once exports again without calibration images."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmpretrain.registry import MODELS
from test_mixed_export import weight_codes
from test_pipeline import (BACKBONE, normalized, randomize_bn, run_tool,
                           uint8_images, write_checkpoint_file,
                           write_image_folder)

import ssql_mm.models  # noqa: F401
from ssql_mm.deploy import OnnxRunner, export_checkpoint, output_parity
from ssql_mm.evaluation import load_pretrained, parse_bit_setting
from ssql_mm.quantization import quant_layers

# Tiny reconstructions: a few steps per unit on the 16 calibration images.
SPECS = {
    method: f'{method}:iters=20,images=16,batch_size=8'
    for method in ('adaround', 'brecq', 'qdrop')
}
BITS = 4


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = MODELS.build(BACKBONE)
    randomize_bn(model)
    path = tmp_path_factory.mktemp('ckpt') / 'ssl.pth'
    return write_checkpoint_file(path, BACKBONE, model.state_dict())


@pytest.fixture(scope='module',
                params=[('brecq', 'integer'), ('adaround', 'inputs')],
                ids=lambda p: '-'.join(p))
def reconstructed(request, checkpoint, tmp_path_factory):
    """A 4w4a export after PTQ, its feature model and the saved backbone."""
    method, placement = request.param
    folder = tmp_path_factory.mktemp(method)
    out, calib = str(folder / 'm.onnx'), str(folder / 'calib.pth')
    _, model = export_checkpoint(
        checkpoint, out, f'{BITS}/{BITS}', calib_images=uint8_images(16),
        calib_batches=2, batch_size=8, placement=placement,
        save_calibrated_to=calib, ptq=SPECS[method])
    return out, model, calib


def test_exported_codes_are_the_baked_codes(reconstructed):
    out, model, _ = reconstructed
    codes = weight_codes(out)
    layers = [(name, layer) for name, layer in quant_layers(model.backbone)
              if layer.weight_quant.active]
    assert set(codes) == {name for name, _ in layers}
    unlike_max_w = 0
    for name, layer in layers:
        quant = layer.weight_quant
        assert quant.max_abs is not None, f'{name} was not reconstructed'
        bits = quant.bits
        with torch.no_grad():
            fq = quant(layer.weight)
        scale = (quant.max_abs / ((2**bits - 1) / 2)).view(-1, 1, 1, 1)
        expected = torch.round(fq / scale)
        assert torch.equal(
            torch.from_numpy(codes[name].astype(np.float32)), expected)
        weight_max = layer.weight.detach().abs().flatten(1).amax(1)
        unlike_max_w += int(not torch.allclose(weight_max, quant.max_abs))
    assert unlike_max_w > 0  # so an exporter ignoring max_abs fails


def test_onnxruntime_matches_the_reconstructed_model(reconstructed):
    out, model, _ = reconstructed
    # CIFAR's 32x32, as in docs/deploy.md: the pooled features average 4x4
    # last-stage positions. At 2x2 the rounding-tie code flips of the
    # all-integer graph (see test_placement_export_parity) stand out alone.
    x = normalized(uint8_images(8, size=32, seed=1))
    with torch.no_grad():
        ref = model(x)
    got = torch.from_numpy(OnnxRunner(out, threads=1)(x)['features'])
    assert output_parity(ref, got, BITS).within_one_step >= 0.999


def test_saved_reconstruction_exports_again_without_images(
        reconstructed, tmp_path):
    out, model, calib = reconstructed
    # strict load: the max_abs keys are part of the saved backbone
    pretrained = load_pretrained(calib)
    assert any(k.endswith('weight_quant.max_abs')
               for k in pretrained.state_dict)
    rebuilt = pretrained.build(parse_bit_setting(f'{BITS}/{BITS}'))
    x = normalized(uint8_images(8, seed=2))
    with torch.no_grad():
        assert torch.equal(rebuilt(x)[-1], model.backbone(x)[-1])

    again = str(tmp_path / 'again.onnx')
    export_checkpoint(calib, again, f'{BITS}/{BITS}')
    np.testing.assert_array_equal(
        OnnxRunner(out, threads=1)(x)['features'],
        OnnxRunner(again, threads=1)(x)['features'])


def test_tools_reconstruct_once_then_reexport_and_evaluate(
        tmp_path, monkeypatch, capsys, checkpoint):
    data = write_image_folder(tmp_path / 'data')
    first, calib = str(tmp_path / 'first.onnx'), str(tmp_path / 'calib.pth')
    run_tool(monkeypatch, 'export_onnx', [
        checkpoint, '--bits', '4/4', '--placement', 'paper', '--ptq',
        SPECS['qdrop'], '--calib-data', osp.join(data, 'train'),
        '--calib-batches', '2', '--batch-size', '8', '--out', first,
        '--save-calibrated', calib
    ])
    again = str(tmp_path / 'again.onnx')
    run_tool(monkeypatch, 'export_onnx', [calib, '--bits', '4/4', '--out',
                                          again])
    assert 'quantized layers: 21' in capsys.readouterr().out
    x = normalized(uint8_images(4, seed=3))
    np.testing.assert_array_equal(
        OnnxRunner(first, threads=1)(x)['features'],
        OnnxRunner(again, threads=1)(x)['features'])

    result_file = str(tmp_path / 'eval.json')
    run_tool(monkeypatch, 'eval_onnx', [
        again, '--data', data, '--reference', calib, '--knn', '--k', '3',
        '--out', result_file
    ])
    with open(result_file) as f:
        result = json.load(f)
    assert result['parity']['within_one_step'] >= 0.999


@pytest.mark.parametrize('args,code,message', [
    (['--ptq', 'brecq:iterz=5'], 2, "takes no argument ['iterz']"),
    (['--ptq', 'gptq'], 2, "Unknown PTQ method 'gptq'"),
    (['--ptq', 'adaround:iters=0'], 2, 'iters must be a positive int'),
    (['--observer', 'maxmin'], 2, "Unknown observer 'maxmin'"),
    (['--ptq', 'brecq'], 1, 'from calibration images'),
    (['--ptq', 'brecq', '--as-configured', '--config', 'c.py'], 1,
     '--ptq do not apply with --as-configured'),
])
def test_bad_ptq_arguments_stop_in_one_line(tmp_path, monkeypatch, capsys,
                                            checkpoint, args, code, message):
    with pytest.raises(SystemExit) as exit_info:
        run_tool(monkeypatch, 'export_onnx',
                 [checkpoint, '--out', str(tmp_path / 'm.onnx')] + args)
    assert exit_info.value.code == code
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    errors = [line for line in err.splitlines() if 'error:' in line]
    assert len(errors) == 1 and message in errors[0], err
    assert not osp.exists(tmp_path / 'm.onnx')
