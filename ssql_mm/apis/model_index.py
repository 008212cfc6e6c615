"""Read the OpenMMLab model index (``model-index.yml`` + metafiles).

An index is input, not trusted code: every file is read as plain YAML (no
tags, no aliases, at most :data:`MAX_INDEX_BYTES`) and checked against the
format before any field is used, so a damaged or crafted index ends in one
:class:`ModelIndexError` naming the file and the entry.
"""
import difflib
import fnmatch
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import yaml

from .errors import ModelIndexError, UnknownModelError

__all__ = [
    'ModelEntry', 'resource_root', 'default_index_path', 'load_model_index',
    'list_models', 'get_model_entry', 'read_index_file', 'MAX_INDEX_BYTES'
]

PathLike = Union[str, os.PathLike]
# Largest model index or metafile read (the shipped ones are a few KiB).
MAX_INDEX_BYTES = 1 << 20
_SHA256 = re.compile(r'[0-9a-fA-F]{64}')
_FORMAT_HINT = 'Fix the file; configs/ssql/metafile.yml shows the format.'


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


class _IndexLoader(yaml.SafeLoader):
    """``yaml.safe_load`` without aliases: an index has no use for them, and
    nested ones ("billion laughs") turn a tiny file into gigabytes once the
    entries are printed or copied."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f'found the alias *{event.anchor}; aliases are '
                'not allowed in a model index', event.start_mark)
        return super().compose_node(parent, index)


def _yaml_problem(err: yaml.YAMLError) -> str:
    if isinstance(err, yaml.MarkedYAMLError) and err.problem:
        where = (f' (line {err.problem_mark.line + 1})'
                 if err.problem_mark is not None else '')
        problem = err.problem
        if 'constructor for the tag' in problem:
            problem += '; YAML tags are not allowed'
        return ' '.join(f'{problem}{where}'.split())
    return ' '.join(str(err).split())


def read_index_file(path: PathLike) -> Dict[str, Any]:
    """Read one model index or metafile and check its format.

    Args:
        path (str | PathLike): The file.

    Returns:
        dict: Its content (empty for an empty file).

    Raises:
        FileNotFoundError: No file there.
        ModelIndexError: Not a regular file, larger than
            :data:`MAX_INDEX_BYTES`, not UTF-8 plain YAML (tags and aliases
            are refused), or not in the model-index format.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"Model index '{path}' does not exist; point --index or "
            'SSQL_MM_MODEL_INDEX at a model-index.yml or metafile (an '
            "index's Import lists metafiles relative to its folder).")
    try:
        if not path.is_file():
            raise ModelIndexError(f"Model index '{path}' is not a regular "
                                  'file. Point --index / SSQL_MM_MODEL_INDEX '
                                  'at a model-index.yml or metafile.')
        with open(path, 'rb') as f:
            raw = f.read(MAX_INDEX_BYTES + 1)
        if len(raw) > MAX_INDEX_BYTES:
            raise ModelIndexError(
                f"Model index '{path}' is larger than {MAX_INDEX_BYTES} "
                'bytes, far more than any model index needs; refused. '
                + _FORMAT_HINT)
        data = yaml.load(raw.decode('utf-8'), Loader=_IndexLoader)
    except (OSError, UnicodeDecodeError) as err:
        raise ModelIndexError(f"Model index '{path}' cannot be read: "
                              f'{err}. ' + _FORMAT_HINT) from None
    except yaml.YAMLError as err:
        raise ModelIndexError(f"Model index '{path}' is not valid YAML: "
                              f'{_yaml_problem(err)}. ' + _FORMAT_HINT
                              ) from None
    data = {} if data is None else data
    _check_format(data, path)
    return data


def _fail(path: Path, where: str, expected: str,
          value: Any) -> ModelIndexError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + '...'
    return ModelIndexError(
        f"Model index '{path}': {where} must be {expected}, got "
        f'{type(value).__name__} {shown}. ' + _FORMAT_HINT)


_KINDS: Dict[str, Tuple[str, Any]] = {
    'str': ('a string', lambda v: isinstance(v, str)),
    'list': ('a list', lambda v: isinstance(v, list)),
    'mapping': ('a mapping', lambda v: isinstance(v, dict)),
    'size': ('a byte count (integer >= 0)', lambda v: isinstance(v, int)
             and not isinstance(v, bool) and v >= 0),
    'number': ('a number', lambda v: isinstance(v, (int, float))
               and not isinstance(v, bool)),
    'sha256': ('64 hex digits', lambda v: isinstance(v, str)
               and _SHA256.fullmatch(v) is not None),
}


def _check(value: Any, kind: str, where: str, path: Path,
           required: bool = False) -> None:
    if value is None and not required:
        return
    expected, ok = _KINDS[kind]
    if not ok(value):
        raise _fail(path, where, expected, value)


def _check_metadata(metadata: Any, where: str, path: Path) -> None:
    _check(metadata, 'mapping', where, path)
    metadata = metadata or {}
    for key in ('Training Data', 'Note'):
        _check(metadata.get(key), 'str', f'{where}.{key}', path)
    checkpoint = metadata.get('Checkpoint')
    _check(checkpoint, 'mapping', f'{where}.Checkpoint', path)
    checkpoint = checkpoint or {}
    _check(checkpoint.get('File'), 'str', f'{where}.Checkpoint.File', path)
    _check(checkpoint.get('SHA256'), 'sha256', f'{where}.Checkpoint.SHA256',
           path)
    _check(checkpoint.get('Size'), 'size', f'{where}.Checkpoint.Size', path)


def _check_model(model: Any, where: str, path: Path) -> None:
    _check(model, 'mapping', where, path, required=True)
    _check(model.get('Name'), 'str', f'{where}.Name', path, required=True)
    if not model['Name']:
        raise _fail(path, f'{where}.Name', 'a non-empty string', '')
    where = f"{where} ({model['Name']})"
    for key in ('In Collection', 'Config', 'Weights'):
        _check(model.get(key), 'str', f'{where}.{key}', path)
    _check_metadata(model.get('Metadata'), f'{where}.Metadata', path)
    _check(model.get('Results'), 'list', f'{where}.Results', path)
    for i, result in enumerate(model.get('Results') or []):
        here = f'{where}.Results[{i}]'
        _check(result, 'mapping', here, path, required=True)
        for key in ('Task', 'Dataset'):
            _check(result.get(key), 'str', f'{here}.{key}', path)
        _check(result.get('Metrics'), 'mapping', f'{here}.Metrics', path)
        for metric, value in (result.get('Metrics') or {}).items():
            _check(metric, 'str', f'{here}.Metrics key', path)
            _check(value, 'number', f'{here}.Metrics[{metric!r}]', path,
                   required=True)


def _check_format(data: Any, path: Path) -> None:
    """Raise :class:`ModelIndexError` unless ``data`` has the index format.

    Only the fields ssql_mm reads are checked; other keys are kept as they
    are.
    """
    _check(data, 'mapping', 'the file', path, required=True)
    _check(data.get('Import'), 'list', 'Import', path)
    for i, item in enumerate(data.get('Import') or []):
        _check(item, 'str', f'Import[{i}]', path, required=True)
    _check(data.get('Collections'), 'list', 'Collections', path)
    for i, collection in enumerate(data.get('Collections') or []):
        where = f'Collections[{i}]'
        _check(collection, 'mapping', where, path, required=True)
        _check(collection.get('Name'), 'str', f'{where}.Name', path,
               required=True)
        _check_metadata(collection.get('Metadata'), f'{where}.Metadata',
                        path)
    _check(data.get('Models'), 'list', 'Models', path)
    for i, model in enumerate(data.get('Models') or []):
        _check_model(model, f'Models[{i}]', path)


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

    Raises:
        FileNotFoundError: The index or an imported metafile is missing.
        ModelIndexError: A file is damaged, crafted or not in the format
            (see :func:`read_index_file`), or a name is listed twice.
    """
    index_path = Path(index) if index is not None else default_index_path()
    root = index_path.resolve().parent
    top = read_index_file(index_path)
    metafiles = [root / p for p in top.get('Import') or []]
    if 'Models' in top:
        metafiles.insert(0, index_path)
    entries: Dict[str, ModelEntry] = {}
    for metafile in metafiles:
        data = top if metafile == index_path else read_index_file(metafile)
        collections = {
            c['Name']: c.get('Metadata') or {}
            for c in data.get('Collections') or []
        }
        for model in data.get('Models') or []:
            if model['Name'] in entries:
                raise ModelIndexError(
                    f"Model {model['Name']} is listed twice (again in "
                    f'{metafile}); remove or rename one entry.')
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
