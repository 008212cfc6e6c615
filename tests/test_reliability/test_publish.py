"""Publishing is reproducible: the same checkpoint gives the same bytes."""
import torch

from ssql_mm.apis import publish_checkpoint
from ssql_mm.checkpoint import sha256sum


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
