"""Fixtures: a tiny published model served from 127.0.0.1."""
import pytest
import torch

import ssql_mm  # noqa: F401
from ssql_mm.apis import publish_checkpoint
from tiny_zoo import TINY_CONFIG, TINY_NAME, build_tiny_model
from zoo_server import ZooServer


@pytest.fixture
def server():
    zoo = ZooServer()
    yield zoo
    zoo.close()


@pytest.fixture
def zoo(tmp_path, server, monkeypatch):
    """A model index with one published tiny model; cache under tmp."""
    root = tmp_path / 'repo'
    (root / 'configs').mkdir(parents=True)
    config = root / 'configs' / 'tiny.py'
    config.write_text(TINY_CONFIG)
    index = root / 'model-index.yml'
    index.write_text('Import:\n  - configs/metafile.yml\n')
    torch.manual_seed(0)
    model = build_tiny_model(config)
    run = tmp_path / 'run'
    run.mkdir()
    ckpt = run / 'epoch_1.pth'
    torch.save({'meta': {'epoch': 1}, 'state_dict': model.state_dict(),
                'optimizer': {'state': {}, 'param_groups': []}}, ckpt)
    entry = publish_checkpoint(
        ckpt, TINY_NAME, metafile=root / 'configs' / 'metafile.yml',
        out_dir=tmp_path / 'published', url=server.url + '/',
        config='configs/tiny.py', training_data='CIFAR-10',
        results={'FP': 80.5, '4w4a': 78.25}, index=index)
    file_name = entry['Metadata']['Checkpoint']['File']
    published = tmp_path / 'published' / file_name
    server.files[published.name] = published.read_bytes()
    cache = tmp_path / 'cache'
    monkeypatch.setenv('SSQL_MM_HOME', str(cache))
    monkeypatch.setenv('SSQL_MM_MODEL_INDEX', str(index))
    monkeypatch.delenv('SSQL_MM_BASE_URL', raising=False)
    return dict(index=index, root=root, entry=entry, file=published,
                cache=cache / 'checkpoints', model=model, server=server)
