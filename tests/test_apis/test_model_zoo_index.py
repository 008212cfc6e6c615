import importlib.util
from pathlib import Path

import modelindex
import pytest
import torch
import yaml
from mmengine.config import Config

from tiny_zoo import TINY_NAME
from ssql_mm.apis import (get_model, load_model_index, model_zoo_markdown,
                          model_zoo_table, model_zoo_task_table,
                          publish_checkpoint)
from ssql_mm.checkpoint import read_checkpoint, sha256sum
from ssql_mm.models.pretrained import recorded_placement

REPO = Path(__file__).resolve().parents[2]


def _cli():
    spec = importlib.util.spec_from_file_location(
        'model_zoo_cli', REPO / 'tools' / 'model_zoo.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_repository_index_is_valid_and_honest():
    index = REPO / 'model-index.yml'
    names = {m.name for m in modelindex.load(str(index)).models}
    entries = load_model_index(index)
    assert names == set(entries) and entries
    for entry in entries.values():
        assert Path(entry.config_path).is_file(), entry.config
        if entry.weights is None:
            # unpublished: no invented URL or hash, and it says so
            assert entry.note and 'publish' in entry.note.lower()
        else:
            assert entry.sha256 and len(entry.sha256) == 64 and entry.size


def test_shipped_checkpoints_match_their_entries():
    # Every file in checkpoints/ is one entry's, with that entry's hash, and
    # the entry's config builds the quantizer placement the file's stored
    # training config trained with (get_model rebuilds from the entry's).
    entries = load_model_index(REPO / 'model-index.yml').values()
    shipped = {e.file_name: e for e in entries
               if e.weights and '://' not in e.weights}
    assert sorted(shipped) == sorted(
        p.name for p in (REPO / 'checkpoints').glob('*.pth'))
    for entry in shipped.values():
        path = REPO / entry.weights
        assert sha256sum(path) == entry.sha256, entry.name
        stored = Config.fromstring(read_checkpoint(path)['meta']['cfg'], '.py')
        named = Config.fromfile(entry.config_path)
        assert recorded_placement(named.model) == \
            recorded_placement(stored.model), entry.name


def test_publish_updates_one_entry(zoo, tmp_path):
    index, metafile = zoo['index'], zoo['root'] / 'configs' / 'metafile.yml'
    ckpt = tmp_path / 'run' / 'epoch_1.pth'
    entry = publish_checkpoint(ckpt, TINY_NAME, metafile=metafile,
                               out_dir=tmp_path / 'again', index=index)
    assert entry['Weights'] is None and 'SSQL_MM_BASE_URL' in \
        entry['Metadata']['Note']
    assert entry['Results'][0]['Metrics']['Top 1 Accuracy (4w4a)'] == 78.25
    data = yaml.safe_load(metafile.read_text())
    assert [m['Name'] for m in data['Models']] == [TINY_NAME]
    slim = torch.load(tmp_path / 'again' / entry['Metadata']['Checkpoint']
                      ['File'], weights_only=True)
    assert set(slim) == {'meta', 'state_dict'}  # optimizer dropped

    other = zoo['root'] / 'configs' / 'more' / 'metafile.yml'
    publish_checkpoint(ckpt, 'another-model', metafile=other,
                       out_dir=tmp_path / 'again', index=index)
    imports = yaml.safe_load(index.read_text())['Import']
    assert imports == ['configs/metafile.yml', 'configs/more/metafile.yml']
    assert set(load_model_index(index)) == {TINY_NAME, 'another-model'}


def test_table_lists_results_per_bit_width(zoo):
    table = model_zoo_table()
    header, rule, row = table.splitlines()
    assert header.split(' | ')[2:4] == ['Top-1 FP', 'Top-1 4w4a']
    assert '80.50' in row and '78.25' in row
    assert zoo['entry']['Metadata']['Checkpoint']['SHA256'][:8] in row


def test_cli(zoo, capsys):
    cli = _cli()
    assert cli.main(['list', '--names']) == 0
    assert capsys.readouterr().out.split() == [TINY_NAME]
    assert cli.main(['list']) == 0
    assert capsys.readouterr().out.split()[:2] == [TINY_NAME, 'weights']
    assert cli.main(['info', TINY_NAME]) == 0
    assert 'sha256: ' + zoo['entry']['Metadata']['Checkpoint']['SHA256'] in \
        capsys.readouterr().out
    assert cli.main(['download', TINY_NAME, '--no-progress']) == 0
    assert capsys.readouterr().out.strip() == str(zoo['cache'] /
                                                  zoo['file'].name)
    assert cli.main(['info', 'tiny_cifar10']) == 1
    assert 'Did you mean' in capsys.readouterr().err


def test_docs_page_is_generated_from_the_metafiles(tmp_path):
    page = REPO / 'docs' / 'model_zoo.md'
    index = REPO / 'model-index.yml'
    assert page.read_text(encoding='utf-8') == model_zoo_markdown(index), \
        'regenerate: python tools/model_zoo.py table --out docs/model_zoo.md'
    out = tmp_path / 'page.md'
    assert _cli().main(['--index', str(index), 'table', '--out',
                        str(out)]) == 0
    assert out.read_text(encoding='utf-8') == page.read_text(
        encoding='utf-8')


def test_publish_keeps_other_tasks_and_backbone_only_builds_the_backbone(
        zoo, tmp_path):
    index, metafile = zoo['index'], zoo['root'] / 'configs' / 'metafile.yml'
    ckpt = tmp_path / 'run' / 'epoch_1.pth'
    (zoo['root'] / 'checkpoints').mkdir()
    entry = publish_checkpoint(
        ckpt, TINY_NAME, metafile=metafile, index=index,
        out_dir=zoo['root'] / 'checkpoints', url='checkpoints/',
        results={'FP': 40.0}, task='kNN Evaluation', backbone_only=True)
    tasks = {r['Task']: r['Metrics'] for r in entry['Results']}
    assert tasks['Linear Evaluation']['Top 1 Accuracy (4w4a)'] == 78.25
    assert tasks['kNN Evaluation'] == {'Top 1 Accuracy (FP)': 40.0}
    entry = publish_checkpoint(
        ckpt, TINY_NAME, metafile=metafile, index=index,
        out_dir=zoo['root'] / 'checkpoints', url='checkpoints/',
        results={'FP': 41.0}, task='kNN Evaluation', backbone_only=True)
    assert [r['Task'] for r in entry['Results']] == ['Linear Evaluation',
                                                      'kNN Evaluation']
    assert entry['Results'][1]['Metrics'] == {'Top 1 Accuracy (FP)': 41.0}
    file = entry['Metadata']['Checkpoint']['File']
    assert entry['Weights'] == f'checkpoints/{file}'
    slim = torch.load(zoo['root'] / 'checkpoints' / file, weights_only=True)
    assert slim['state_dict'] and all(
        k.startswith('backbone.') for k in slim['state_dict'])
    # Resolved beside the index (a file shipped with the package), offline.
    model = get_model(TINY_NAME, index=index)
    assert type(model).__name__ == 'ResNet_CIFAR'
    for key, value in zoo['model'].backbone.state_dict().items():
        assert torch.equal(model.state_dict()[key], value)


def _quantized_run(tmp_path, placement):
    """A checkpoint whose stored training config trains with
    ``placement``, and a config file that trains with the same."""
    text = ("model = dict(type='SSQLSimSiam', backbone=dict(type='ResNet'), "
            f"quant_cfg=dict(w_bits=4, a_bits=4, placement='{placement}'))\n")
    ckpt = tmp_path / f'{placement}.pth'
    torch.save({'meta': {'cfg': text},
                'state_dict': {'backbone.w': torch.ones(2)}}, ckpt)
    return ckpt, text


def test_publish_adds_an_entry_with_an_existing_config(zoo, tmp_path):
    index, root = zoo['index'], zoo['root']
    metafile = root / 'configs' / 'metafile.yml'
    ckpt, text = _quantized_run(tmp_path, 'integer')
    (root / 'configs' / 'ssql.py').write_text(text)
    before = metafile.read_text()
    for config in ('configs/inputs.py', str(tmp_path / 'outside.py')):
        Path(config if Path(config).is_absolute() else root / config
             ).write_text(text.replace('integer', 'inputs'))
        with pytest.raises(ValueError, match="placement='integer'|outside"):
            publish_checkpoint(ckpt, 'ssql-seed1', metafile=metafile,
                               index=index, config=config,
                               out_dir=tmp_path / 'out')
    assert metafile.read_text() == before  # nothing written
    note = 'seed 1, trained and evaluated under integer'
    for task, fp in (('kNN Evaluation', 33.0), ('Linear Evaluation', 37.0)):
        entry = publish_checkpoint(
            ckpt, 'ssql-seed1', metafile=metafile, index=index,
            config=str(root / 'configs' / 'ssql.py'), url='checkpoints/',
            out_dir=tmp_path / 'out', results={'FP': fp}, task=task,
            dataset='CIFAR-10 (10,000 test images)',
            metadata={'Note': note, 'Iterations': 2500}
            if task.startswith('kNN') else None)
    assert entry['Config'] == 'configs/ssql.py'  # relative to the index
    assert entry['Metadata']['Note'] == note  # kept by the second call
    assert entry['Metadata']['Iterations'] == 2500
    assert [r['Task'] for r in entry['Results']] == ['kNN Evaluation',
                                                     'Linear Evaluation']
    # the page's table shows the linear probe, whatever the task order
    row = next(r for r in model_zoo_table(index).splitlines()
               if r.startswith('| ssql-seed1 '))
    assert '| 37.00 |' in row and '33.00' not in row
    # fine-tuned results get a table of their own, not the linear columns
    publish_checkpoint(ckpt, 'ssql-seed1', metafile=metafile, index=index,
                       url='checkpoints/', out_dir=tmp_path / 'out',
                       results={'FP': 57.0, '4w4a': 53.0},
                       task='Image Classification',
                       dataset='CIFAR-10 fine-tuned, min/max PTQ')
    row = next(r for r in model_zoo_table(index).splitlines()
               if r.startswith('| ssql-seed1 '))
    assert '| 37.00 |' in row and '57.00' not in row
    assert ('| ssql-seed1 | CIFAR-10 fine-tuned, min/max PTQ | 57.00 | '
            '53.00 |') in model_zoo_task_table(index=index)
    assert '## Fine-tuned downstream' in model_zoo_markdown(index)


def test_detection_and_segmentation_results_get_their_metric_and_table(
        zoo, tmp_path):
    """Fine-tuned detection/segmentation results are named box AP / mIoU, as
    OpenMMLab metafiles name them, and get a page table each, out of the
    frozen-feature columns."""
    ckpt = tmp_path / 'ssql.pth'
    torch.save({'state_dict': {'backbone.w': torch.ones(2)}}, ckpt)
    index, metafile = zoo['index'], zoo['root'] / 'configs' / 'metafile.yml'
    kwargs = dict(metafile=metafile, index=index, url='checkpoints/',
                  out_dir=tmp_path / 'out')
    publish_checkpoint(ckpt, 'ssql-a', results={'FP': 40.0}, **kwargs)
    publish_checkpoint(ckpt, 'ssql-a', results={'FP': 31.5, '4w4a': 28.25},
                       task='Object Detection', dataset='paste, RetinaNet',
                       **kwargs)
    publish_checkpoint(ckpt, 'ssql-a', results={'FP': 61.0},
                       task='Semantic Segmentation', dataset='paste, FCN',
                       **kwargs)
    entry = load_model_index(index)['ssql-a']
    metrics = {r['Task']: r['Metrics'] for r in entry.results}
    assert metrics['Object Detection'] == {'box AP (FP)': 31.5,
                                           'box AP (4w4a)': 28.25}
    assert metrics['Semantic Segmentation'] == {'mIoU (FP)': 61.0}
    row = next(r for r in model_zoo_table(index).splitlines()
               if r.startswith('| ssql-a '))
    assert '40.00' in row and '31.50' not in row and '61.00' not in row
    det = model_zoo_task_table('Object Detection', index)
    assert det.splitlines()[0] == ('| Model | Data, protocol | box AP FP | '
                                   'box AP 4w4a |')
    assert '| ssql-a | paste, RetinaNet | 31.50 | 28.25 |' in det
    page = model_zoo_markdown(index)
    assert page.index('### Object Detection') < page.index(
        '### Semantic Segmentation')
    assert '### Image Classification' not in page  # no such results
    assert '| mIoU FP |' in page
