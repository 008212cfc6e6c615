"""Helpers of the fault-injection suite (imported by the tests)."""
import hashlib
import os
import runpy
import sys
from typing import Dict

import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

DAMAGE_KINDS = ('empty', 'truncated', 'random', 'malicious')


class RunsCode:
    """Unpickling this creates ``marker``: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker, )


def zoo_entry(name: str, weights: str, file: str = None,
              body: bytes = None) -> Dict:
    """A model-index entry; with ``body``, its SHA-256 and size."""
    checkpoint = {}
    if file is not None:
        checkpoint['File'] = file
    if body is not None:
        checkpoint['SHA256'] = hashlib.sha256(body).hexdigest()
        checkpoint['Size'] = len(body)
    return {'Name': name, 'Weights': weights,
            'Metadata': {'Checkpoint': checkpoint} if checkpoint else {}}


def write_backbone_checkpoint(path, non_finite: bool = False) -> str:
    """A small float CIFAR ResNet-18 checkpoint (8 base channels) with its
    config in ``meta``, as the sweep and the exporter read it; with
    ``non_finite``, one weight is NaN and one infinite."""
    from mmengine.config import Config
    from mmpretrain.models.backbones import ResNet_CIFAR
    backbone = dict(type='ResNet_CIFAR', depth=18, base_channels=8)
    torch.manual_seed(0)
    # The class itself: the registry's default scope depends on earlier tests.
    state = ResNet_CIFAR(depth=18, base_channels=8).state_dict()
    if non_finite:
        state['layer2.0.conv1.weight'][0, 0, 0, 0] = float('nan')
        state['layer3.1.conv2.weight'][1, 0, 0, 0] = float('inf')
    cfg = Config(dict(model=dict(backbone=backbone, data_preprocessor=dict(
        mean=[125.0, 123.0, 114.0], std=[63.0, 62.0, 66.0]))))
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in state.items()},
                'meta': {'cfg': cfg.pretty_text}}, path)
    return str(path)


def run_tool(monkeypatch, tool: str, *args: str) -> int:
    """Run ``tools/...`` in this process from the repository root; return
    its exit status (0 when it returns)."""
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(sys, 'argv', [tool, *map(str, args)])
    try:
        runpy.run_path(tool, run_name='__main__')
    except SystemExit as done:
        if isinstance(done.code, str):  # SystemExit('prog: error: ...')
            print(done.code, file=sys.stderr)
            return 1
        return done.code or 0
    return 0


def error_line(capsys, prog: str) -> str:
    """The one line a tool printed for its error; no traceback before it."""
    err = capsys.readouterr().err.strip().splitlines()
    assert err, 'the tool printed nothing on stderr'
    assert not any('Traceback' in line for line in err), '\n'.join(err)
    assert err[-1].startswith(f'{prog}: error: '), err[-1]
    return err[-1]


def run_tool_process(tool: str, *args: str) -> str:
    """Run ``tools/...`` in a fresh process from the repository root; check
    that it failed with one line and no traceback; return that line."""
    import subprocess
    done = subprocess.run([sys.executable, tool, *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    err = done.stderr.strip().splitlines()
    assert done.returncode == 1, done.stderr[-3000:]
    assert not any('Traceback' in line for line in err), done.stderr[-3000:]
    prog = os.path.splitext(os.path.basename(tool))[0]
    assert err and err[-1].startswith(f'{prog}: error: '), err[-3:]
    return err[-1]
