"""Read the OpenMMLab model index (``model-index.yml`` + metafiles)."""
import difflib
import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import yaml

from .errors import UnknownModelError

__all__ = [
    'ModelEntry', 'resource_root', 'default_index_path', 'load_model_index',
    'list_models', 'get_model_entry'
]

PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class ModelEntry:
    """One model of the zoo, as its metafile describes it.

    Attributes:
        name (str): Unique model name.
        config (str, optional): Config path relative to ``root``.
        weights (str, optional): Download URL; None while unpublished.
        file_name (str, optional): Checkpoint file name (from
            ``Metadata.Checkpoint.File`` or the URL).
        sha256 (str, optional): SHA-256 of the checkpoint file.
        size (int, optional): Checkpoint size in bytes.
        training_data (str, optional): Pre-training data set.
        results (list): OpenMMLab ``Results`` entries.
        note (str, optional): Free text, e.g. why weights are missing.
        root (str): Folder the config path is relative to.
        metafile (str): The metafile the entry comes from.
    """
    name: str
    config: Optional[str] = None
    weights: Optional[str] = None
    file_name: Optional[str] = None
    sha256: Optional[str] = None
    size: Optional[int] = None
    training_data: Optional[str] = None
    results: List[dict] = field(default_factory=list)
    note: Optional[str] = None
    root: str = '.'
    metafile: str = ''

    @property
    def config_path(self) -> Optional[str]:
        """Absolute path of the config, or None."""
        return None if self.config is None else str(Path(self.root,
                                                         self.config))

    @property
    def published(self) -> bool:
        """Whether the checkpoint has a download URL."""
        return bool(self.weights)


def resource_root() -> Path:
    """The folder holding ``model-index.yml``, ``configs/`` and
    ``checkpoints/``.

    An installed package carries them in ``ssql_mm/.mim/`` (the layout
    OpenMMLab packages and ``mim`` use, written by ``setup.py`` when a wheel
    is built); an editable install or a source checkout reads them from the
    repository root.

    Returns:
        Path: The folder.

    Raises:
        FileNotFoundError: Neither place has a ``model-index.yml``.
    """
    package = Path(__file__).resolve().parents[1]
    for root in (package / '.mim', package.parent):
        if (root / 'model-index.yml').is_file():
            return root
    raise FileNotFoundError(
        f"No model-index.yml in {package / '.mim'} (installed package) or "
        f'{package.parent} (source tree). Reinstall ssql_mm from a wheel or '
        'a source checkout, or set SSQL_MM_MODEL_INDEX to an index file.')


def default_index_path() -> Path:
    """``$SSQL_MM_MODEL_INDEX``, else ``model-index.yml`` in
    :func:`resource_root`.

    Returns:
        Path: The index file to read.
    """
    env = os.environ.get('SSQL_MM_MODEL_INDEX')
    if env:
        return Path(env).expanduser()
    return resource_root() / 'model-index.yml'


def _read_yaml(path: Path) -> Dict[str, Any]:
    with open(path, encoding='utf-8') as f:
        return yaml.safe_load(f) or {}


def _entry(model: Dict[str, Any], collections: Dict[str, dict], root: Path,
           metafile: Path) -> ModelEntry:
    metadata = dict(collections.get(model.get('In Collection'), {}))
    metadata.update(model.get('Metadata') or {})
    checkpoint = metadata.get('Checkpoint') or {}
    weights = model.get('Weights') or None
    file_name = checkpoint.get('File')
    if file_name is None and weights:
        file_name = weights.rstrip('/').rsplit('/', 1)[-1]
    return ModelEntry(
        name=model['Name'],
        config=model.get('Config'),
        weights=weights,
        file_name=file_name,
        sha256=checkpoint.get('SHA256'),
        size=checkpoint.get('Size'),
        training_data=metadata.get('Training Data'),
        results=list(model.get('Results') or []),
        note=metadata.get('Note'),
        root=str(root),
        metafile=str(metafile))


def load_model_index(
        index: Optional[PathLike] = None) -> Dict[str, ModelEntry]:
    """Read every model of an index and the metafiles it imports.

    Args:
        index (str | PathLike, optional): ``model-index.yml`` or a single
            metafile. Defaults to None, :func:`default_index_path`.

    Returns:
        dict: Model name to :class:`ModelEntry`, in file order.
    """
    index_path = Path(index) if index is not None else default_index_path()
    root = index_path.resolve().parent
    top = _read_yaml(index_path)
    metafiles = [root / p for p in top.get('Import') or []]
    if 'Models' in top:
        metafiles.insert(0, index_path)
    entries: Dict[str, ModelEntry] = {}
    for metafile in metafiles:
        data = top if metafile == index_path else _read_yaml(metafile)
        collections = {
            c['Name']: c.get('Metadata') or {}
            for c in data.get('Collections') or []
        }
        for model in data.get('Models') or []:
            if model['Name'] in entries:
                raise ValueError(f"Model {model['Name']} is listed twice "
                                 f'(again in {metafile}).')
            entries[model['Name']] = _entry(model, collections, root,
                                            metafile)
    return entries


def list_models(pattern: Optional[str] = None,
                index: Optional[PathLike] = None) -> List[str]:
    """Names of the models in the zoo.

    Args:
        pattern (str, optional): Shell-style wildcard (``'*cifar10*'``); a
            pattern without wildcards matches as a substring. Defaults to
            None (all).
        index (str | PathLike, optional): See :func:`load_model_index`.

    Returns:
        list[str]: Sorted model names.
    """
    names = sorted(load_model_index(index))
    if pattern is None:
        return names
    if not any(c in pattern for c in '*?['):
        pattern = f'*{pattern}*'
    return [n for n in names if fnmatch.fnmatch(n, pattern)]


def get_model_entry(name: str,
                    index: Optional[PathLike] = None) -> ModelEntry:
    """The entry of one model.

    Args:
        name (str): Model name.
        index (str | PathLike, optional): See :func:`load_model_index`.

    Returns:
        ModelEntry: The model's metadata.

    Raises:
        UnknownModelError: No such model; the message names close matches.
    """
    entries = load_model_index(index)
    if name in entries:
        return entries[name]
    close = difflib.get_close_matches(name, list(entries), n=3, cutoff=0.5)
    hint = (f' Did you mean {", ".join(close)}?' if close else
            ' Run `python tools/model_zoo.py list` to see all models.')
    raise UnknownModelError(f'Unknown model {name!r}.{hint}')
