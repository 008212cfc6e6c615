"""The model zoo at a glance: the ``list`` rows and the markdown table,
generated from the metafiles."""
import os
import re
from typing import List, Optional, Union

from ssql_mm.evaluation.bit_settings import (PAPER_BIT_SETTINGS,
                                            parse_bit_setting)
from .model_index import ModelEntry, list_models, load_model_index

__all__ = [
    'model_zoo_table', 'model_zoo_markdown', 'model_zoo_rows',
    'model_zoo_task_table', 'BIT_SETTINGS', 'DOWNSTREAM_TASK',
    'DOWNSTREAM_TASKS'
]

PathLike = Union[str, os.PathLike]
# Column order of the settings the paper reports; others follow, sorted.
BIT_SETTINGS = tuple(parse_bit_setting(s).name for s in PAPER_BIT_SETTINGS)
_SETTING = re.compile(r'\(([^)]+)\)\s*$')
# Fine-tuned downstream results (OpenMMLab's task names), a table each.
DOWNSTREAM_TASK = 'Image Classification'
DOWNSTREAM_TASKS = (DOWNSTREAM_TASK, 'Object Detection',
                    'Semantic Segmentation')


def _settings_of(result: dict) -> dict:
    values = {}
    for metric, value in (result.get('Metrics') or {}).items():
        match = _SETTING.search(metric)
        if match:
            values[match.group(1)] = value
    return values


def _accuracies(entry: ModelEntry) -> dict:
    """Top-1 per setting of the frozen-feature evaluations; a linear
    evaluation's figures win over other tasks' (the page's table is the
    linear probe's), whatever their order."""
    values = {}
    frozen = [r for r in entry.results
              if r.get('Task') not in DOWNSTREAM_TASKS]
    for result in sorted(frozen, key=lambda r: 'linear' in str(
            r.get('Task')).lower()):
        values.update(_settings_of(result))
    return values


def _availability(entry: ModelEntry) -> str:
    """'weights' (downloadable), 'mirror only' (file known, not uploaded)
    or 'config only' (nothing trained and published yet)."""
    if entry.published:
        return 'weights'
    if entry.file_name and entry.sha256:
        return 'mirror only'
    return 'config only'


def _headline(entry: ModelEntry) -> str:
    """Top-1 at FP and 4w4a of the linear evaluation (else the first
    result), e.g. ``'linear top-1 FP 38.01, 4w4a 32.64'``."""
    results = sorted(entry.results,
                     key=lambda r: 'linear' not in str(r.get('Task')).lower())
    if not results:
        return ''
    values = _settings_of(results[0])
    shown = [s for s in ('FP', '4w4a') if s in values] or list(values)[:2]
    if not shown:
        return ''
    task = str(results[0].get('Task') or '').replace(' Evaluation', '')
    return (f'{task.lower() or "result"} top-1 '
            + ', '.join(f'{s} {values[s]:.2f}' for s in shown))


def model_zoo_rows(pattern: Optional[str] = None,
                   index: Optional[PathLike] = None) -> List[str]:
    """One line per model: name, what is published, size, hash, result.

    ``weights`` can be downloaded; ``mirror only`` names a file (hash and
    size known) that is not uploaded, to be served through
    ``SSQL_MM_BASE_URL``; ``config only`` has no trained checkpoint yet.

    Args:
        pattern (str, optional): See :func:`list_models`. Defaults to None.
        index (str | PathLike, optional): Model index to read. Defaults to
            None, the package's ``model-index.yml``.

    Returns:
        list[str]: Aligned lines, the model name first, sorted by name.
    """
    entries = load_model_index(index)
    names = list_models(pattern, index)
    width = max((len(n) for n in names), default=0)
    rows = []
    for name in names:
        entry = entries[name]
        cells = [f'{name:<{width}}', f'{_availability(entry):<11}']
        if entry.sha256 or entry.size is not None:
            cells.append(f'{entry.size / 2**20:6.1f} MiB' if entry.size
                         is not None else ' ' * 10)
            cells.append(f'sha256 {entry.sha256[:8]}' if entry.sha256 else
                         ' ' * 15)
        cells.append(_headline(entry))
        rows.append('  '.join(cells).rstrip())
    return rows


_DOC_INTRO = """# Model zoo

Generated from the metafiles by `python tools/model_zoo.py table --out
docs/model_zoo.md`; edit `configs/*/metafile.yml`, not this page.

Top-1 accuracy of a linear classifier on frozen features at each bit-width
setting (`<w>w<a>a`: weight and activation bits; FP: float). Every model is
one set of weights evaluated at every bit-width. Quantized figures depend on
the quantizer placement (`docs/design.md`): each model's note
(`python tools/model_zoo.py info NAME`) names the placement it was trained
with and the one its results are evaluated under; compare rows evaluated
under the same placement.

"""

_DOC_USAGE = """
## Use

```python
import ssql_mm
from ssql_mm.apis import download_checkpoint, get_model, list_models

print(list_models('cifar10'))
model = get_model('ssql-simsiam_resnet18_4xb128-coslr-400e_cifar10')
```

```shell
python tools/model_zoo.py list
python tools/model_zoo.py info NAME
python tools/model_zoo.py download NAME
```

Checkpoints are cached under `$SSQL_MM_HOME` (default `~/.cache/ssql_mm`)
after their SHA-256 is checked; a cached, verified file is used without any
request. `SSQL_MM_BASE_URL` (or `--base-url`) points downloads at a mirror,
an `http(s)://` or `file://` URL or a local folder holding the files by
name. Every checkpoint is loaded with `weights_only=True` and a small
allow-list; files that need more are refused unless you opt in with
`trusted=True` / `--trust-checkpoint`.

A model whose checkpoint says "not published" has no released weights yet.
To add one from a local training run:

```shell
python tools/model_zoo.py publish work_dirs/RUN/epoch_400.pth \\
    --name MODEL_NAME --result FP=... --result 4w4a=... [--url URL/]
```

This writes a slim copy `MODEL_NAME_<sha256[:8]>.pth` next to the
checkpoint and records its hash, size and results in the metafile; with
`--url` the entry points at the uploaded copy.

## Converting checkpoints

```shell
# official SSQL-SimSiam -> ssql_mm (backbone.*, neck.*, head.predictor.*)
python tools/model_converters/ssql_official_to_mm.py OFFICIAL.pth OUT.pth \\
    --depth 18
# ... or the backbone alone (loads into ResNet_CIFAR / QuantResNet_CIFAR)
python tools/model_converters/ssql_official_to_mm.py OFFICIAL.pth OUT.pth \\
    --backbone-only
# ssql_mm -> torchvision resnet<depth> (no fc: load with strict=False);
# --format mmdet / mmpretrain for mmdet, mmseg and mmpretrain backbones
python tools/extract_backbone.py SSQL.pth TV.pth --format torchvision
```

Both print what they mapped, what they dropped and why (quantizer state,
the official projector's last bias, projector/predictor for torchvision) and
stop on keys they do not understand or on a depth other than `--depth`.
"""


def _checkpoint_cell(entry: ModelEntry) -> str:
    if entry.weights:
        link = entry.weights if '://' in entry.weights else \
            f'../{entry.weights}'  # shipped file, relative to the docs page
        return f'[model]({link})'
    return 'not published'


def model_zoo_table(index: Optional[PathLike] = None,
                    link_root: str = '') -> str:
    """One row per model: data, top-1 per bit-width, checkpoint.

    Args:
        index (str | PathLike, optional): Model index to read. Defaults to
            None, the package's ``model-index.yml``.
        link_root (str): Prefix of config links, e.g. ``'../'`` for a page
            in ``docs/``. Defaults to ''.

    Returns:
        str: A GitHub-flavoured markdown table.
    """
    entries = list(load_model_index(index).values())
    found = {s for e in entries for s in _accuracies(e)}
    settings: List[str] = [s for s in BIT_SETTINGS if s in found]
    settings += sorted(found - set(BIT_SETTINGS))
    head = (['Model', 'Pre-train data'] + [f'Top-1 {s}' for s in settings]
            + ['Config', 'Checkpoint', 'SHA-256', 'Size'])
    rows = ['| ' + ' | '.join(head) + ' |',
            '|' + '---|' * len(head)]
    for entry in entries:
        acc = _accuracies(entry)
        size = (f'{entry.size / 2**20:.1f} MiB'
                if entry.size is not None else '-')
        config = (f'[config]({link_root}{entry.config})'
                  if entry.config else '-')
        cells = ([entry.name, entry.training_data or '-']
                 + [f'{acc[s]:.2f}' if s in acc else '-' for s in settings]
                 + [config, _checkpoint_cell(entry),
                    f'`{entry.sha256[:8]}`' if entry.sha256 else '-', size])
        rows.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(rows) + '\n'


def model_zoo_task_table(task: str = DOWNSTREAM_TASK,
                         index: Optional[PathLike] = None) -> str:
    """One row per model and data set with results of ``task``; the
    columns are named by the metric (``'box AP (4w4a)'`` gives
    ``box AP 4w4a``).

    Args:
        task (str): The metafile task. Defaults to ``'Image
            Classification'`` (fine-tuned downstream results).
        index (str | PathLike, optional): Model index to read. Defaults to
            None, the package's ``model-index.yml``.

    Returns:
        str: A markdown table, or '' when no model has such results.
    """
    results = [(e.name, r) for e in load_model_index(index).values()
               for r in e.results if r.get('Task') == task]
    if not results:
        return ''
    rows = [(name, str(r.get('Dataset') or '-'), _settings_of(r))
            for name, r in results]
    found = {s for _, _, values in rows for s in values}
    settings = [s for s in BIT_SETTINGS if s in found]
    settings += sorted(found - set(BIT_SETTINGS))
    names = {_SETTING.sub('', metric).strip() for _, r in results
             for metric in r.get('Metrics') or {}}
    metric = names.pop() if len(names) == 1 else 'Result'
    metric = 'Top-1' if metric == 'Top 1 Accuracy' else metric
    head = ['Model', 'Data, protocol'] + [f'{metric} {s}' for s in settings]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for name, dataset, values in rows:
        lines.append('| ' + ' | '.join(
            [name, dataset] + [f'{values[s]:.2f}' if s in values else '-'
                               for s in settings]) + ' |')
    return '\n'.join(lines) + '\n'


_DOC_DOWNSTREAM = """
## Fine-tuned downstream

Test results after fine-tuning the pretrained backbone on a downstream task
(metafile tasks `Image Classification`, `Object Detection`, `Semantic
Segmentation`), then quantizing it as the data column says; means over the
fine-tuning seeds the column names (`docs/results.md`).
"""


def model_zoo_markdown(index: Optional[PathLike] = None) -> str:
    """The ``docs/model_zoo.md`` page: table and usage.

    Args:
        index (str | PathLike, optional): Model index to read. Defaults to
            None, the package's ``model-index.yml``.

    Returns:
        str: Markdown text.
    """
    tables = [(task, model_zoo_task_table(task, index))
              for task in DOWNSTREAM_TASKS]
    downstream = ''.join(f'\n### {task}\n\n{table}'
                         for task, table in tables if table)
    return (_DOC_INTRO + model_zoo_table(index, link_root='../')
            + (_DOC_DOWNSTREAM + downstream if downstream else '')
            + _DOC_USAGE)
