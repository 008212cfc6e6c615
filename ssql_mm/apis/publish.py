"""Turn a training checkpoint into a model-zoo entry.

``publish_checkpoint`` keeps only the weights and meta of a Runner
checkpoint (the same input gives the same bytes), names the file
``<model>_<sha256[:8]>.pth`` and writes its hash,
size, config, data and results into a metafile. Without a URL the entry says
the file is not uploaded (``Weights: null``); the file can then still be
served from a mirror or local folder through ``SSQL_MM_BASE_URL``.
"""
import hashlib
import os
import re
from pathlib import Path
from typing import Any, Dict, Optional, Union

import yaml

from ssql_mm.checkpoint import (UnsafePathError, atomic_write_bytes,
                                checkpoint_bytes, read_checkpoint, sha256sum,
                                unwrap_state_dict)
from .model_index import default_index_path, read_index_file

__all__ = [
    'publish_checkpoint', 'check_model_name', 'metric_key',
    'DEFAULT_METAFILE'
]

PathLike = Union[str, os.PathLike]
DEFAULT_METAFILE = 'configs/ssql/metafile.yml'
UNPUBLISHED_NOTE = ('Checkpoint not uploaded yet: Weights stays null until '
                    'it is. Serve the file named in Checkpoint from a mirror '
                    'or local folder with SSQL_MM_BASE_URL.')
# A model name also names the published file: nothing that leaves a folder.
_PLAIN_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9._+-]*')
_HEADER = ('# Model zoo entries of ssql_mm (OpenMMLab metafile format).\n'
           '# Checkpoint hash, size and results are written by\n'
           '# `python tools/model_zoo.py publish`.\n')


def metric_key(setting: str) -> str:
    """Metric name of one bit-width setting, e.g. ``'4w4a'``.

    Args:
        setting (str): ``'FP'`` or ``'<w>w<a>a'``.

    Returns:
        str: ``'Top 1 Accuracy (4w4a)'``.
    """
    return f'Top 1 Accuracy ({setting})'


def check_model_name(name: str) -> None:
    """Refuse a model name that cannot be a plain file name.

    Args:
        name (str): The model name.

    Raises:
        UnsafePathError: ``name`` holds other characters than letters,
            digits and ``. _ + -``, or starts with ``.``, ``_``, ``+`` or
            ``-`` (``../x``, ``/abs``, ``a/b``, ``.hidden``).
    """
    if not _PLAIN_NAME.fullmatch(name):
        raise UnsafePathError(
            f'Model name {name!r} is not a plain name; it also names the '
            "published file '<name>_<sha256[:8]>.pth' in the output folder. "
            'Use letters, digits and . _ + - only, starting with a letter '
            "or digit, e.g. 'ssql-simsiam_resnet18_cifar10'.")


def _slim_copy(checkpoint: PathLike, out_dir: Path, name: str,
               trusted: bool, backbone_only: bool = False) -> Path:
    """Weights and meta only (only ``backbone.*`` weights with
    ``backbone_only``), named by their hash: the same input checkpoint
    always gives the same file, byte for byte."""
    loaded = read_checkpoint(checkpoint, trusted=trusted)
    meta = loaded.get('meta') if isinstance(loaded.get('meta'), dict) else {}
    state = unwrap_state_dict(loaded, f"'{checkpoint}'")
    if backbone_only:
        state = {k: v for k, v in state.items() if k.startswith('backbone.')}
        if not state:
            raise ValueError(f"{checkpoint} has no 'backbone.*' weights; "
                             'publish it without --backbone-only.')
    data = checkpoint_bytes({'meta': meta, 'state_dict': state})
    final = out_dir / f'{name}_{hashlib.sha256(data).hexdigest()[:8]}.pth'
    atomic_write_bytes(data, final)
    return final


def _register_metafile(index: Path, metafile: Path) -> None:
    if not index.is_file():
        return
    data = read_index_file(index)
    rel = os.path.relpath(metafile.resolve(), index.resolve().parent)
    imports = data['Import'] = data.get('Import') or []
    if rel not in imports:
        imports.append(rel)
        atomic_write_bytes(
            yaml.safe_dump(data, sort_keys=False).encode('utf-8'), index)


def publish_checkpoint(checkpoint: PathLike,
                       name: str,
                       metafile: Optional[PathLike] = None,
                       out_dir: Optional[PathLike] = None,
                       url: Optional[str] = None,
                       config: Optional[str] = None,
                       training_data: Optional[str] = None,
                       results: Optional[Dict[str, float]] = None,
                       dataset: Optional[str] = None,
                       task: str = 'Linear Evaluation',
                       collection: str = 'SSQL',
                       index: Optional[PathLike] = None,
                       trusted: bool = False,
                       backbone_only: bool = False) -> Dict[str, Any]:
    """Write (or update) the metafile entry of a checkpoint.

    Args:
        checkpoint (str | PathLike): A Runner or ssql_mm checkpoint.
        name (str): Model name; an entry of that name is updated.
        metafile (str | PathLike, optional): Metafile to write. Defaults to
            None, ``configs/ssql/metafile.yml`` next to the model index.
        out_dir (str | PathLike, optional): Where the slim, renamed copy is
            written. Defaults to None, the checkpoint's folder.
        url (str, optional): Where the copy is (or will be) uploaded; a URL
            ending in ``/`` is a folder and gets the file name appended.
            Defaults to None: the entry is marked unpublished.
        config (str, optional): Config path relative to the repository root.
            Defaults to None (keep the entry's).
        training_data (str, optional): Pre-training data. Defaults to None.
        results (dict, optional): Top-1 accuracy per bit-width setting
            (``{'FP': 91.2, '4w4a': 89.0}``); they replace the entry's results
            of the same task and dataset, and results of other tasks are
            kept. Defaults to None (keep all).
        dataset (str, optional): Evaluation data of ``results``. Defaults to
            None, ``training_data``.
        task (str): Task of ``results``. Defaults to 'Linear Evaluation'.
        collection (str): Collection of a new entry. Defaults to 'SSQL'.
        index (str | PathLike, optional): Model index that must import the
            metafile; config paths are relative to its folder. Defaults to
            None, :func:`default_index_path`.
        trusted (bool): Load ``checkpoint`` without the safe allow-list.
            Defaults to False.
        backbone_only (bool): Keep only the ``backbone.*`` weights (what
            feature extraction, fine-tuning and deployment need; a third to
            a half of a self-supervised model's file). Defaults to False.

    Returns:
        dict: The entry as written.

    Raises:
        UnsafePathError: ``name`` is not a plain name (see
            :func:`check_model_name`); nothing is written.
        ModelIndexError: The metafile or index is damaged or not in the
            format; nothing is written.
    """
    check_model_name(name)
    index = Path(index) if index is not None else default_index_path()
    root = index.resolve().parent
    metafile = Path(metafile) if metafile is not None else root / \
        DEFAULT_METAFILE
    if config is not None and not (root / config).is_file():
        raise FileNotFoundError(f'Config {config} not found under {root}.')
    # Both files are checked before anything is written.
    data = read_index_file(metafile) if metafile.exists() else {}
    if index.exists():
        read_index_file(index)
    out = Path(out_dir) if out_dir is not None else Path(checkpoint).parent
    copy = _slim_copy(checkpoint, out, name, trusted, backbone_only)

    models = data['Models'] = data.get('Models') or []
    entry = next((m for m in models if m.get('Name') == name), None)
    if entry is None:
        entry = {'Name': name, 'In Collection': collection, 'Metadata': {},
                 'Results': None, 'Weights': None, 'Config': config}
        models.append(entry)
    metadata = entry.setdefault('Metadata', {}) or {}
    entry['Metadata'] = metadata
    if training_data is not None:
        metadata['Training Data'] = training_data
    metadata['Checkpoint'] = {
        'File': copy.name,
        'SHA256': sha256sum(copy),
        'Size': copy.stat().st_size,
    }
    if url is not None and url.endswith('/'):
        url = url + copy.name
    entry['Weights'] = url
    if url is None:
        metadata['Note'] = UNPUBLISHED_NOTE
    else:
        metadata.pop('Note', None)
    if config is not None:
        entry['Config'] = config
    if results:
        result = {
            'Task': task,
            'Dataset': dataset or metadata.get('Training Data'),
            'Metrics': {metric_key(k): float(v)
                        for k, v in results.items()},
        }
        kept = [r for r in entry.get('Results') or []
                if (r.get('Task'), r.get('Dataset')) !=
                (result['Task'], result['Dataset'])]
        entry['Results'] = kept + [result]
    atomic_write_bytes(
        (_HEADER + yaml.safe_dump(data, sort_keys=False)).encode('utf-8'),
        metafile)
    _register_metafile(index, metafile)
    return entry
