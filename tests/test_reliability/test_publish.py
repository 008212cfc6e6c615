"""Publishing is reproducible (the same checkpoint gives the same bytes) and
writes only inside its output folder (issue 21, case 6)."""
import runpy
from pathlib import Path

import pytest
import torch

from ssql_mm.apis import publish_checkpoint
from ssql_mm.checkpoint import sha256sum

REPO = Path(__file__).resolve().parents[2]


def _tree(folder: Path) -> list:
    """Every path below ``folder`` (files and folders, hidden included)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob('*'))


def test_same_checkpoint_same_published_bytes(tmp_path):
    torch.manual_seed(0)
    ckpt = tmp_path / 'epoch_1.pth'
    torch.save({'meta': {'epoch': 1}, 'state_dict': {'w': torch.randn(8, 8)},
                'optimizer': {'state': {}, 'param_groups': []}}, ckpt)
    index = tmp_path / 'model-index.yml'
    index.write_text('Import: []\n')
    entries = [
        publish_checkpoint(ckpt, 'm', metafile=tmp_path / 'meta.yml',
                           out_dir=tmp_path / f'out{i}', index=index)
        for i in range(3)
    ]
    hashes = {e['Metadata']['Checkpoint']['SHA256'] for e in entries}
    assert len(hashes) == 1
    files = [tmp_path / f'out{i}' / entries[i]['Metadata']['Checkpoint']
             ['File'] for i in range(3)]
    assert len({f.read_bytes() for f in files}) == 1
    assert sha256sum(files[0]) == hashes.pop()
    # a copy of the same checkpoint under another name publishes the same
    copy = tmp_path / 'renamed.pth'
    copy.write_bytes(ckpt.read_bytes())
    again = publish_checkpoint(copy, 'm', metafile=tmp_path / 'meta.yml',
                               out_dir=tmp_path / 'out3', index=index)
    assert again['Metadata']['Checkpoint'] == \
        entries[0]['Metadata']['Checkpoint']


@pytest.mark.parametrize('name', ['../../x', '../x', '{tmp}/abs/x', 'a/b',
                                  '.x', 'x\0y', ''])
def test_publish_name_cannot_leave_the_out_dir(tmp_path, capsys, name):
    name = name.format(tmp=tmp_path)
    torch.save({'state_dict': {'w': torch.ones(2)}}, tmp_path / 'ckpt.pth')
    (tmp_path / 'model-index.yml').write_text('Import: []\n')
    out = tmp_path / 'a' / 'b' / 'out'
    before = _tree(tmp_path)
    main = runpy.run_path(str(REPO / 'tools' / 'model_zoo.py'))['main']
    code = main(['--index', str(tmp_path / 'model-index.yml'), 'publish',
                 str(tmp_path / 'ckpt.pth'), '--name', name, '--out-dir',
                 str(out), '--metafile', str(tmp_path / 'meta.yml')])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('model_zoo: error: ')
    assert 'not a plain name' in err[0]
    assert _tree(tmp_path) == before


def test_published_copy_keeps_no_machine_paths(tmp_path):
    # MMEngine stores the training config with the paths it was given; a
    # published file (shipped in wheels) names them relative to the repo.
    repo = tmp_path / 'repo'
    repo.mkdir()
    (repo / 'model-index.yml').write_text('Import: []\n')
    cfg = (f"data_root = '{tmp_path}/data/cifar10'\n"
           f"work_dir = '{repo}/work_dirs/run'\n"
           "model = dict(type='ResNet', depth=18)\n")
    ckpt = tmp_path / 'iter_10.pth'
    torch.save({'meta': {'cfg': cfg, 'iter': 10},
                'state_dict': {'backbone.w': torch.ones(2)}}, ckpt)
    entry = publish_checkpoint(ckpt, 'm', metafile=repo / 'meta.yml',
                               out_dir=repo / 'checkpoints',
                               index=repo / 'model-index.yml')
    slim = torch.load(repo / 'checkpoints' / entry['Metadata']['Checkpoint']
                      ['File'], weights_only=True)
    assert str(tmp_path) not in slim['meta']['cfg']
    assert "data_root = '../data/cifar10'" in slim['meta']['cfg']
    assert "work_dir = 'work_dirs/run'" in slim['meta']['cfg']
    assert slim['meta']['iter'] == 10


def test_a_metafile_outside_the_index_folder_is_refused(tmp_path, capsys):
    # The index imports its metafiles by relative path: one elsewhere would
    # be registered as '../..', which breaks as soon as the repo moves.
    repo = tmp_path / 'repo'
    repo.mkdir()
    index = repo / 'model-index.yml'
    index.write_text('Import: []\n')
    torch.save({'state_dict': {'w': torch.ones(2)}}, tmp_path / 'ckpt.pth')
    before = _tree(tmp_path)
    main = runpy.run_path(str(REPO / 'tools' / 'model_zoo.py'))['main']
    code = main(['--index', str(index), 'publish', str(tmp_path / 'ckpt.pth'),
                 '--name', 'm', '--out-dir', str(repo / 'checkpoints'),
                 '--metafile', str(tmp_path / 'elsewhere' / 'meta.yml')])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('model_zoo: error: ')
    assert 'outside' in err[0] and '--index' in err[0]
    assert _tree(tmp_path) == before
    assert index.read_text() == 'Import: []\n'
