import hashlib
import os

import pytest
import torch
from mmengine.runner import CheckpointLoader

from tiny_zoo import TINY_NAME
from ssql_mm.apis import (ChecksumError, DownloadError, NotPublishedError,
                          UnknownModelError, download_checkpoint, get_model,
                          list_models, load_model_index, sha256sum)


def _cache_files(zoo):
    return sorted(os.listdir(zoo['cache'])) if zoo['cache'].exists() else []


def test_download_by_name_verifies_and_caches(zoo):
    server = zoo['server']
    path = download_checkpoint(TINY_NAME, progress=True)
    assert os.path.dirname(path) == str(zoo['cache'])
    assert sha256sum(path) == zoo['entry']['Metadata']['Checkpoint']['SHA256']
    assert server.requests == [zoo['file'].name]
    assert _cache_files(zoo) == [zoo['file'].name]

    # Second call: served from the cache, no request, even with the server
    # no longer holding the file.
    server.files.clear()
    assert download_checkpoint(TINY_NAME) == path
    assert server.requests == [zoo['file'].name]


def test_corrupt_cache_entry_is_fetched_again(zoo):
    path = download_checkpoint(TINY_NAME, progress=False)
    with open(path, 'r+b') as f:
        f.write(b'\0' * 16)
    assert download_checkpoint(TINY_NAME, progress=False) == path
    assert len(zoo['server'].requests) == 2
    assert sha256sum(path) == zoo['entry']['Metadata']['Checkpoint']['SHA256']


def test_tampered_file_is_refused_and_not_cached(zoo):
    server, name = zoo['server'], zoo['file'].name
    body = bytearray(server.files[name])
    body[len(body) // 2] ^= 0xFF  # same size, different bytes
    server.files[name] = bytes(body)
    with pytest.raises(ChecksumError, match='SHA-256'):
        download_checkpoint(TINY_NAME, progress=False)
    assert _cache_files(zoo) == []


def test_interrupted_transfer_leaves_nothing(zoo):
    zoo['server'].truncated.add(zoo['file'].name)
    with pytest.raises(DownloadError):
        download_checkpoint(TINY_NAME, progress=False)
    assert _cache_files(zoo) == []


def test_http_404_is_reported(zoo):
    zoo['server'].files.clear()
    with pytest.raises(DownloadError, match='404'):
        download_checkpoint(TINY_NAME, progress=False)
    assert _cache_files(zoo) == []


def test_unknown_name_suggests_close_matches(zoo):
    with pytest.raises(UnknownModelError, match=TINY_NAME):
        download_checkpoint('ssql-simsiam_tiny_cifar100')


def test_mirror_folder_and_file_url(zoo, tmp_path, monkeypatch):
    mirror = zoo['file'].parent
    path = download_checkpoint(TINY_NAME, base_url=str(mirror),
                               progress=False)
    assert sha256sum(path) == sha256sum(zoo['file'])
    assert zoo['server'].requests == []
    os.unlink(path)
    monkeypatch.setenv('SSQL_MM_BASE_URL', mirror.as_uri())
    other = tmp_path / 'other_cache'
    assert download_checkpoint(TINY_NAME, dir=other, progress=False) == str(
        other / zoo['file'].name)
    assert zoo['server'].requests == []


def test_unpublished_entry(zoo):
    metafile = zoo['root'] / 'configs' / 'metafile.yml'
    text = metafile.read_text().replace(
        f"Weights: {zoo['entry']['Weights']}", 'Weights: null')
    metafile.write_text(text)
    with pytest.raises(NotPublishedError, match='SSQL_MM_BASE_URL'):
        download_checkpoint(TINY_NAME)
    path = download_checkpoint(TINY_NAME, base_url=zoo['server'].url,
                               progress=False)
    assert sha256sum(path) == sha256sum(zoo['file'])


def test_download_by_url_uses_index_hash(zoo):
    url = zoo['entry']['Weights']
    zoo['server'].files[zoo['file'].name] = b'not the checkpoint'
    with pytest.raises(ChecksumError):
        download_checkpoint(url, progress=False)
    assert _cache_files(zoo) == []


def test_mmengine_http_loading_goes_through_the_cache(zoo):
    url = zoo['entry']['Weights']
    loaded = CheckpointLoader.load_checkpoint(url, map_location='cpu')
    assert set(loaded) == {'meta', 'state_dict'}  # slim published copy
    assert _cache_files(zoo) == [zoo['file'].name]
    CheckpointLoader.load_checkpoint(url, map_location='cpu')
    assert len(zoo['server'].requests) == 1


def test_get_model_loads_published_weights(zoo):
    model = get_model(TINY_NAME)
    assert not model.training
    for key, value in zoo['model'].state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    fresh = get_model(TINY_NAME, pretrained=False)
    w = 'backbone.conv1.weight'
    assert not torch.equal(fresh.state_dict()[w], model.state_dict()[w])


def test_list_models_and_index(zoo):
    assert list_models() == [TINY_NAME]
    assert list_models('tiny') == [TINY_NAME]
    assert list_models('*in1k') == []
    entry = load_model_index()[TINY_NAME]
    assert entry.published and entry.training_data == 'CIFAR-10'
    assert entry.file_name == zoo['file'].name
    digest = hashlib.sha256(zoo['file'].read_bytes()).hexdigest()
    assert entry.sha256 == digest and entry.file_name.endswith(
        f'_{digest[:8]}.pth')
    assert entry.size == zoo['file'].stat().st_size
