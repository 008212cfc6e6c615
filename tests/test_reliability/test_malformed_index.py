"""A damaged or crafted model index: every ``tools/model_zoo.py`` sub-command
ends in one line naming the file, writes nothing and runs nothing; aliases
("billion laughs") and oversized files are refused (issue 21, case 4)."""
import runpy
from pathlib import Path

import pytest
import torch

from ssql_mm.apis import ModelIndexError, load_model_index
from ssql_mm.apis.model_index import MAX_INDEX_BYTES

REPO = Path(__file__).resolve().parents[2]
SHA = 'ab' * 32
LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + \
    ''.join(f'{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n'
            for p, c in zip('abcdefgh', 'bcdefghi')) + \
    'Models:\n  - Name: m\n    Note: *i\n'
MALFORMED = {
    'bad_yaml': 'Models:\n  - Name: [unclosed\n',
    'python_tag': "Models:\n  - !!python/object/apply:os.system ['touch "
                  "{ran}']\n",
    'models_not_a_list': 'Models: just-a-string\n',
    'entry_not_a_mapping': 'Models:\n  - just-a-string\n',
    'name_not_a_string': 'Models:\n  - Name: 12\n',
    'size_not_a_number': f"Models:\n  - Name: m\n    Metadata:\n      "
                         f"Checkpoint: {{File: m.pth, SHA256: '{SHA}', "
                         f"Size: 12x}}\n",
    'bad_sha256': 'Models:\n  - Name: m\n    Metadata:\n      Checkpoint: '
                  '{File: m.pth, SHA256: 1234}\n',
    'metric_not_a_number': 'Models:\n  - Name: m\n    Results:\n      - '
                           "Task: Linear Evaluation\n        Metrics: "
                           "{'Top 1 Accuracy (FP)': high}\n",
    'import_not_a_list': 'Import: 5\n',
    'not_utf8': b'Models:\n  - Name: \xff\xfe\n',
    'billion_laughs': LAUGHS,
}
COMMANDS = {
    'list': ['list'],
    'list_pattern': ['list', 'cifar'],
    'list_names': ['list', '--names'],
    'info': ['info', 'm'],
    'download_name': ['download', 'm', '--no-progress'],
    'download_url': ['download', 'http://127.0.0.1:9/m.pth',
                     '--no-progress'],
    'publish': ['publish', '{ckpt}', '--name', 'm', '--metafile',
                '{index}', '--out-dir', '{out}'],
    'table': ['table'],
    'table_out': ['table', '--out', '{out}/zoo.md'],
}


@pytest.fixture(scope='module')
def zoo_main():
    return runpy.run_path(str(REPO / 'tools' / 'model_zoo.py'))['main']


def _write(path: Path, content) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def _files(folder: Path) -> list:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob('*'))


@pytest.mark.parametrize('command', list(COMMANDS))
@pytest.mark.parametrize('kind', list(MALFORMED))
def test_every_subcommand_reports_one_line(tmp_path, capsys, monkeypatch,
                                           zoo_main, kind, command):
    monkeypatch.setenv('SSQL_MM_HOME', str(tmp_path / 'home'))
    content = MALFORMED[kind]
    if isinstance(content, str):
        content = content.replace('{ran}', str(tmp_path / 'ran'))
    index = _write(tmp_path / 'model-index.yml', content)
    torch.save({'state_dict': {'w': torch.ones(2)}}, tmp_path / 'ckpt.pth')
    before = _files(tmp_path)
    args = [a.format(ckpt=tmp_path / 'ckpt.pth', index=index,
                     out=tmp_path / 'out') for a in COMMANDS[command]]
    assert zoo_main(['--index', str(index)] + args) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith('model_zoo: error: Model index ')
    assert str(index) in err[0]
    assert len(captured.out) < 1000
    assert _files(tmp_path) == before  # nothing written, nothing ran


def test_malformed_imported_metafile_is_named(tmp_path):
    index = _write(tmp_path / 'model-index.yml',
                   'Import:\n  - configs/metafile.yml\n')
    (tmp_path / 'configs').mkdir()
    metafile = _write(tmp_path / 'configs' / 'metafile.yml',
                      MALFORMED['size_not_a_number'])
    with pytest.raises(ModelIndexError, match=r"Models\[0\] \(m\)\.Metadata"
                       r"\.Checkpoint\.Size must be a byte count") as err:
        load_model_index(index)
    assert str(metafile) in str(err.value)


def test_aliases_and_oversized_files_are_refused(tmp_path):
    laughs = _write(tmp_path / 'laughs.yml', LAUGHS)
    assert laughs.stat().st_size < 1024  # expands to 9**9 strings
    with pytest.raises(ModelIndexError,
                       match=r'alias \*a; aliases are not allowed'):
        load_model_index(laughs)
    big = _write(tmp_path / 'big.yml', 'Models: []\n' + '#' * MAX_INDEX_BYTES)
    with pytest.raises(ModelIndexError, match='larger than'):
        load_model_index(big)


def test_the_shipped_index_is_valid():
    entries = load_model_index()
    assert any(e.published for e in entries.values())
