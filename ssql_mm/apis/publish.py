"""Turn a training checkpoint into a model-zoo entry.

``publish_checkpoint`` keeps only the weights and meta of a Runner
checkpoint (the same input gives the same bytes), names the file
``<model>_<sha256[:8]>.pth`` and writes its hash,
size, config, data and results into a metafile. Without a URL the entry says
the file is not uploaded (``Weights: null``); the file can then still be
served from a mirror or local folder through ``SSQL_MM_BASE_URL``.

The entry's config must build the network the checkpoint was trained as:
``get_model`` rebuilds the backbone from it, so a checkpoint whose stored
training config names another quantizer placement is refused. The copy keeps
no machine paths: absolute paths in the stored config are rewritten relative
to the model index's folder (the repository root).
"""
import hashlib
import os
import re
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Union

import yaml

from mmengine.config import Config

from ssql_mm.checkpoint import (UnsafePathError, atomic_write_bytes,
                                checkpoint_bytes, read_checkpoint, sha256sum,
                                unwrap_state_dict)
from ssql_mm.models.pretrained import recorded_placement
from .model_index import default_index_path, read_index_file

__all__ = [
    'publish_checkpoint', 'check_model_name', 'metric_key', 'TASK_METRICS',
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


# The metric OpenMMLab metafiles report per task; top-1 for the rest.
TASK_METRICS = {
    'Object Detection': 'box AP',
    'Semantic Segmentation': 'mIoU',
}


def metric_key(setting: str, task: str = 'Linear Evaluation') -> str:
    """Metric name of one bit-width setting, e.g. ``'4w4a'``, in a task.

    Args:
        setting (str): ``'FP'`` or ``'<w>w<a>a'``.
        task (str): The metafile task. Defaults to 'Linear Evaluation'.

    Returns:
        str: ``'Top 1 Accuracy (4w4a)'``, or ``'box AP (4w4a)'`` for
        ``'Object Detection'``, ``'mIoU (4w4a)'`` for ``'Semantic
        Segmentation'``.
    """
    return f"{TASK_METRICS.get(task, 'Top 1 Accuracy')} ({setting})"


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


def _strings(value: Any) -> Iterator[str]:
    """Every string inside nested dicts, lists and tuples."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def _portable_meta(meta: Dict[str, Any], root: Path) -> Dict[str, Any]:
    """``meta`` whose stored config (``meta['cfg']``, MMEngine's text) names
    every absolute path relative to ``root`` instead, e.g.
    ``data_root='/home/me/data/cifar10'`` -> ``'../data/cifar10'`` for a
    repository in ``/home/me/repo``."""
    text = meta.get('cfg')
    if not isinstance(text, str) or not text:
        return meta
    for path in sorted(set(_strings(Config.fromstring(text, '.py').to_dict()))):
        if os.path.isabs(path):
            text = text.replace(repr(path),
                                repr(os.path.relpath(path, root)))
    return dict(meta, cfg=text)


def _slim_copy(loaded: Dict[str, Any], checkpoint: PathLike, out_dir: Path,
               name: str, root: Path, backbone_only: bool = False) -> Path:
    """Weights and meta only (only ``backbone.*`` weights with
    ``backbone_only``; see :func:`_portable_meta`), named by their hash: the
    same input checkpoint always gives the same file, byte for byte."""
    meta = loaded.get('meta') if isinstance(loaded.get('meta'), dict) else {}
    meta = _portable_meta(meta, root)
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


def _config_path(config: str, root: Path) -> str:
    """``config`` as an index names it: a path relative to ``root``."""
    path = Path(config)
    full = path if path.is_absolute() else root / path
    if not full.is_file():
        raise FileNotFoundError(f'Config {config} not found under {root}.')
    try:
        return full.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise ValueError(
            f'Config {config} is outside {root}, the folder the model index '
            'names configs from; put it under configs/ there and pass that '
            'path.') from None


def _check_placement(loaded: Dict[str, Any], checkpoint: PathLike,
                     config: Optional[str], root: Path) -> None:
    """Refuse an entry config that builds another quantizer placement than
    the training config stored in the checkpoint (``meta['cfg']``)."""
    meta = loaded.get('meta')
    text = meta.get('cfg') if isinstance(meta, dict) else None
    if not config or not isinstance(text, str) or not text:
        return
    trained = recorded_placement(
        Config.fromstring(text, '.py').get('model') or {})
    named = recorded_placement(
        Config.fromfile(str(root / config)).get('model') or {})
    if trained != named:
        raise ValueError(
            f"{checkpoint} was trained with quantizer placement '{trained}' "
            f"(its stored config), but {config} builds '{named}': get_model "
            'would rebuild it as another network. Publish it with a config '
            f"that inherits {config} and sets placement='{trained}'.")


def _without_status(note: Optional[str]) -> Optional[str]:
    """A note without the words that say the checkpoint is not uploaded."""
    if not note or note.startswith('Not published'):
        return None
    return note.replace(UNPUBLISHED_NOTE, '').strip() or None


def _set_note(metadata: Dict[str, Any], note: Optional[str],
              url: Optional[str]) -> None:
    """A given note replaces the entry's; without a URL the note says the
    file is not uploaded; with one, that sentence goes."""
    note = _without_status(note if note is not None else metadata.get('Note'))
    if url is None:
        note = f'{note} {UNPUBLISHED_NOTE}' if note else UNPUBLISHED_NOTE
    if note:
        metadata['Note'] = note
    else:
        metadata.pop('Note', None)


def _merge_result(entry: Dict[str, Any], result: Dict[str, Any]) -> None:
    """Replace the result of the same task and data set in place (or add
    it last); results of other tasks stay where they are."""
    key = (result['Task'], result['Dataset'])
    merged, placed = [], False
    for old in entry.get('Results') or []:
        if (old.get('Task'), old.get('Dataset')) != key:
            merged.append(old)
        elif not placed:
            merged.append(result)
            placed = True
    entry['Results'] = merged if placed else merged + [result]


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
                       backbone_only: bool = False,
                       metadata: Optional[Dict[str, Any]] = None
                       ) -> Dict[str, Any]:
    """Write (or update) the metafile entry of a checkpoint.

    Args:
        checkpoint (str | PathLike): A Runner or ssql_mm checkpoint. The
            copy's stored config names absolute paths relative to the
            index's folder.
        name (str): Model name; an entry of that name is updated.
        metafile (str | PathLike, optional): Metafile to write. Defaults to
            None, ``configs/ssql/metafile.yml`` next to the model index.
        out_dir (str | PathLike, optional): Where the slim, renamed copy is
            written. Defaults to None, the checkpoint's folder.
        url (str, optional): Where the copy is (or will be) uploaded; a URL
            ending in ``/`` is a folder and gets the file name appended (a
            relative one, e.g. ``'checkpoints/'``, names a file shipped
            beside the index). Defaults to None: the note says the file is
            not uploaded.
        config (str, optional): Config path relative to the repository root
            (an absolute path inside it is made relative). It must build the
            quantizer placement of the training config stored in the
            checkpoint. Defaults to None (keep the entry's).
        training_data (str, optional): Pre-training data. Defaults to None.
        results (dict, optional): The task's metric (top-1, box AP or mIoU:
            :func:`metric_key`) per bit-width setting
            (``{'FP': 91.2, '4w4a': 89.0}``); they replace the entry's results
            of the same task and dataset in place, and results of other tasks
            are kept. Defaults to None (keep all).
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
        metadata (dict, optional): ``Metadata`` fields to set, e.g.
            ``{'Note': ..., 'Iterations': 2500, 'Batch Size': 128}``; a
            ``Note`` replaces the entry's (without it the entry's note is
            kept). Defaults to None.

    Returns:
        dict: The entry as written.

    Raises:
        UnsafePathError: ``name`` is not a plain name (see
            :func:`check_model_name`); nothing is written.
        ModelIndexError: The metafile or index is damaged or not in the
            format; nothing is written.
        ValueError: ``config`` builds another quantizer placement than the
            checkpoint was trained with, or ``config`` or ``metafile`` lies
            outside the index's folder; nothing is written.
    """
    check_model_name(name)
    index = Path(index) if index is not None else default_index_path()
    root = index.resolve().parent
    metafile = Path(metafile) if metafile is not None else root / \
        DEFAULT_METAFILE
    if index.exists() and not metafile.resolve().is_relative_to(root):
        raise ValueError(
            f'Metafile {metafile} is outside {root}, the folder of the model '
            f'index {index} that would import it; write it under configs/ '
            'there, or pass an --index beside it.')
    if config is not None:
        config = _config_path(config, root)
    extra = dict(metadata or {})
    if 'Checkpoint' in extra:
        raise ValueError('Metadata.Checkpoint is written from the file; '
                         'leave it out of metadata.')
    # The files and the checkpoint are checked before anything is written.
    data = read_index_file(metafile) if metafile.exists() else {}
    if index.exists():
        read_index_file(index)
    loaded = read_checkpoint(checkpoint, trusted=trusted)
    models = data['Models'] = data.get('Models') or []
    entry = next((m for m in models if m.get('Name') == name), None)
    _check_placement(loaded, checkpoint,
                     config or (entry or {}).get('Config'), root)
    out = Path(out_dir) if out_dir is not None else Path(checkpoint).parent
    copy = _slim_copy(loaded, checkpoint, out, name, root, backbone_only)

    if entry is None:
        entry = {'Name': name, 'In Collection': collection, 'Metadata': {},
                 'Results': None, 'Weights': None, 'Config': config}
        models.append(entry)
    fields = entry['Metadata'] = entry.get('Metadata') or {}
    note = extra.pop('Note', None)
    fields.update(extra)
    if training_data is not None:
        fields['Training Data'] = training_data
    fields['Checkpoint'] = {
        'File': copy.name,
        'SHA256': sha256sum(copy),
        'Size': copy.stat().st_size,
    }
    if url is not None and url.endswith('/'):
        url = url + copy.name
    entry['Weights'] = url
    _set_note(fields, note, url)
    if config is not None:
        entry['Config'] = config
    if results:
        _merge_result(entry, {
            'Task': task,
            'Dataset': dataset or fields.get('Training Data'),
            'Metrics': {metric_key(k, task): float(v)
                        for k, v in results.items()},
        })
    atomic_write_bytes(
        (_HEADER + yaml.safe_dump(data, sort_keys=False)).encode('utf-8'),
        metafile)
    _register_metafile(index, metafile)
    return entry
