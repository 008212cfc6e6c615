"""The bit-width sweep: settings, kNN, linear probe, the tool end to end."""
import csv
import json
import os.path as osp
import runpy
import shutil
import sys

import pytest
import torch
from mmengine.config import Config
from mmpretrain.models.backbones import ResNet_CIFAR

from ssql_mm.datasets import CIFAR10_MEAN, CIFAR10_STD
from ssql_mm.evaluation import (BitSetting, knn_top1, linear_probe_top1,
                                load_split, parse_bit_setting,
                                parse_bit_settings, run_bit_sweep)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SUBSET = osp.join(ROOT, 'data', 'cifar10_subset')
TOOL = osp.join(ROOT, 'tools', 'bit_sweep.py')
CLASSES = ('airplane', 'cat', 'ship')
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
TINY = dict(type='ResNet_CIFAR', depth=18, stem_channels=4, base_channels=4)


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
    """3 classes of real CIFAR-10 images: 8 train and 4 test per class."""
    root = tmp_path_factory.mktemp('images')
    for split, count in (('train', 8), ('test', 4)):
        for name in CLASSES:
            src = osp.join(SUBSET, split, name)
            (root / split / name).mkdir(parents=True)
            for file in sorted(p for p in __import__('os').listdir(src))[:count]:
                shutil.copy(osp.join(src, file), root / split / name / file)
    return str(root)


def _tiny_backbone(seed):
    torch.manual_seed(seed)
    return ResNet_CIFAR(**{k: v for k, v in TINY.items() if k != 'type'})


def _save_checkpoint(path, backbone, with_meta=True):
    ckpt = dict(state_dict={f'backbone.{k}': v
                            for k, v in backbone.state_dict().items()})
    ckpt['state_dict']['neck.fc.weight'] = torch.zeros(2, 2)
    if with_meta:  # what MMEngine's Runner stores
        cfg = Config(dict(model=dict(type='SimSiam', backbone=TINY)))
        ckpt['meta'] = dict(cfg=cfg.pretty_text)
    torch.save(ckpt, path)
    return str(path)


@pytest.mark.parametrize('text,expected,name', [
    ('fp', (None, None), 'FP'),
    ('FP', (None, None), 'FP'),
    ('8/8', (8, 8), '8w8a'),
    ('2/4', (2, 4), '2w4a'),
    (' 6/6 ', (6, 6), '6w6a'),
    ('8/0', (8, None), '8wfpa'),
])
def test_parse_bit_setting(text, expected, name):
    setting = parse_bit_setting(text)
    assert (setting.w_bits, setting.a_bits) == expected
    assert setting.name == name


@pytest.mark.parametrize('text', ['9/x', '1/1', '4', '4/4/4', '17/8', '-2/4',
                                  '', 'int8'])
def test_unknown_bit_settings_are_rejected(text):
    with pytest.raises(ValueError, match='bit setting'):
        parse_bit_setting(text)


def test_duplicate_and_empty_settings_are_rejected():
    with pytest.raises(ValueError, match='twice'):
        parse_bit_settings(['4/4', 'fp', '4/4'])
    with pytest.raises(ValueError, match='No bit setting'):
        parse_bit_settings([])


def test_weighted_knn_votes_by_similarity():
    train = torch.tensor([[1., 0.], [0., 1.], [0.1, 1.]])
    labels = torch.tensor([0, 1, 1])
    test = torch.tensor([[1., 0.05]])
    # A plain majority of the 3 neighbours says class 1; the similarity
    # weights at T = 0.07 say class 0, the far closer neighbour.
    assert knn_top1(train, labels, test, torch.tensor([0]), k=3) == 100.0
    assert knn_top1(train, labels, test, torch.tensor([1]), k=3,
                    temperature=100.) == 100.0
    # Only the direction counts (cosine similarity).
    assert knn_top1(train * 50, labels, test, torch.tensor([0]), k=1) == 100.0


def test_linear_probe_separable_and_deterministic():
    gen = torch.Generator().manual_seed(0)
    centers = torch.randn(4, 16, generator=gen) * 3
    labels = torch.arange(4).repeat_interleave(50)
    feats = centers[labels] + torch.randn(200, 16, generator=gen)
    test_labels = torch.arange(4).repeat_interleave(10)
    test = centers[test_labels] + torch.randn(40, 16, generator=gen)
    acc = linear_probe_top1(feats, labels, test, test_labels, epochs=20)
    assert acc >= 95.0
    shuffled = test_labels[torch.randperm(40, generator=gen)]
    assert linear_probe_top1(feats, labels, test, shuffled, epochs=20) < 60.0
    noisy = torch.randn(200, 16, generator=gen)
    runs = [linear_probe_top1(noisy, labels, test, test_labels, epochs=5,
                              seed=3) for _ in range(2)]
    assert runs[0] == runs[1]


def test_sweep_tool_end_to_end(tmp_path, data_dir, monkeypatch):
    ckpt_a = _save_checkpoint(tmp_path / 'ssql.pth', _tiny_backbone(0))
    out = tmp_path / 'out'
    bits = ['fp', '8/8', '2/4']
    monkeypatch.setattr(sys, 'argv', [
        TOOL, ckpt_a, '--data', data_dir, '--bits', *bits, '--out', str(out),
        '--linear-epochs', '3', '--calib-batches', '1', '--batch-size', '16'
    ])
    runpy.run_path(TOOL, run_name='__main__')

    result = json.loads((out / 'bit_sweep.json').read_text())
    assert result['settings'] == ['FP', '8w8a', '2w4a']
    for metric in ('knn', 'linear'):
        scores = result[metric]['ssql']
        assert list(scores) == result['settings']
        assert all(0.0 <= v <= 100.0 for v in scores.values())
    assert result['meta']['num_train'] == 24
    assert result['meta']['num_test'] == 12

    # FP is the float backbone: its kNN accuracy is that of mmpretrain's
    # ResNet_CIFAR features with the same weights.
    split = load_split(osp.join(data_dir, 'train'))
    test = load_split(osp.join(data_dir, 'test'))
    ref = _tiny_backbone(0)
    ref.eval()
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        feats = [ref((s.images.float() - mean) / std)[-1].mean((2, 3))
                 for s in (split, test)]
    expected = knn_top1(feats[0], split.labels, feats[1], test.labels)
    assert result['knn']['ssql']['FP'] == pytest.approx(expected)

    with open(out / 'bit_sweep.csv') as f:
        rows = list(csv.reader(f))
    assert rows[0] == ['bits', 'knn/ssql', 'linear/ssql']
    assert [r[0] for r in rows[1:]] == ['FP', '8w8a', '2w4a']
    table = (out / 'bit_sweep.md').read_text()
    for name in ('| FP |', '| 8w8a |', '| 2w4a |', 'kNN', 'linear'):
        assert name in table
    png = (out / 'bit_sweep.png').read_bytes()
    assert png[:8] == PNG_SIGNATURE and len(png) > 1000


def test_sweep_with_config_and_two_checkpoints(tmp_path, data_dir):
    config = tmp_path / 'pretrain.py'
    config.write_text(f'model = dict(type="SimSiam", backbone={TINY!r})\n')
    paths = [
        _save_checkpoint(tmp_path / 'a.pth', _tiny_backbone(0), False),
        _save_checkpoint(tmp_path / 'b.pth', _tiny_backbone(1), False),
    ]
    from ssql_mm.evaluation import SweepConfig
    result = run_bit_sweep(paths, data_dir, ['4/4'],
                           SweepConfig(linear=False, calib_batches=1),
                           config=str(config))
    assert result.checkpoints == ['a', 'b'] and result.linear == {}
    assert set(result.knn) == {'a', 'b'}
    with pytest.raises(ValueError, match='--config'):
        run_bit_sweep(paths[:1], data_dir, ['4/4'])


def test_bad_inputs_fail_before_any_work(tmp_path, data_dir):
    good = _save_checkpoint(tmp_path / 'good.pth', _tiny_backbone(0))
    # Settings are checked before the checkpoint is even opened.
    with pytest.raises(ValueError, match="'9/x'"):
        run_bit_sweep([str(tmp_path / 'missing.pth')], data_dir, ['fp', '9/x'])
    with pytest.raises(ValueError, match="'1/1'"):
        run_bit_sweep([good], data_dir, ['1/1'])
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        run_bit_sweep([str(tmp_path / 'missing.pth')], data_dir, ['fp'])

    no_backbone = tmp_path / 'head_only.pth'
    torch.save(dict(state_dict={'head.fc.weight': torch.zeros(3, 4)}),
               no_backbone)
    with pytest.raises(ValueError, match='no backbone weights'):
        run_bit_sweep([str(no_backbone)], data_dir, ['fp'])

    empty = tmp_path / 'empty'
    (empty / 'train' / 'cat').mkdir(parents=True)
    (empty / 'test' / 'cat').mkdir(parents=True)
    (empty / 'train' / 'cat' / 'notes.txt').write_text('not an image')
    with pytest.raises(ValueError, match='No image found'):
        run_bit_sweep([good], str(empty), ['fp'])
    with pytest.raises(FileNotFoundError, match='does not exist'):
        run_bit_sweep([good], str(tmp_path / 'nowhere'), ['fp'])


def test_bit_setting_is_float():
    assert BitSetting(None, None).is_float
    assert not BitSetting(4, None).is_float


def test_tool_reports_bad_input_as_an_error_message(tmp_path, data_dir,
                                                    monkeypatch, capsys):
    monkeypatch.setattr(sys, 'argv', [
        TOOL, str(tmp_path / 'x.pth'), '--data', data_dir, '--bits', '9/x'])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(TOOL, run_name='__main__')
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "bit_sweep: error: Unknown bit setting '9/x'" in err
    assert 'Traceback' not in err
