"""Model zoo command line: list, info, download, publish, table.

Examples::

    python tools/model_zoo.py list cifar10
    python tools/model_zoo.py info NAME
    python tools/model_zoo.py download NAME [--dir DIR] [--base-url URL]
    python tools/model_zoo.py publish CKPT --name NAME --result FP=91.0 \\
        --result 4w4a=89.5 [--url https://host/folder/] [--config CONFIG] \\
        [--note TEXT] [--metadata 'Batch Size=128']
    python tools/model_zoo.py table --out docs/model_zoo.md
"""
import argparse
import sys
from typing import Dict, List, Optional, Union

from ssql_mm.apis import (download_checkpoint, get_model_entry, list_models,
                          model_zoo_markdown, model_zoo_rows, model_zoo_table,
                          publish_checkpoint)
from ssql_mm.checkpoint import atomic_write_bytes, report_errors


def parse_results(pairs: List[str]) -> Dict[str, float]:
    """``['FP=91.2', '4w4a=89']`` -> ``{'FP': 91.2, '4w4a': 89.0}``."""
    results = {}
    for pair in pairs:
        setting, sep, value = pair.partition('=')
        if not sep:
            raise ValueError(f'--result takes SETTING=VALUE, got {pair!r}')
        results[setting.strip()] = float(value)
    return results


def parse_metadata(pairs: List[str]) -> Dict[str, Union[int, str]]:
    """``['Iterations=2500', 'Batch Size=128']`` -> ``{'Iterations': 2500,
    'Batch Size': 128}``: whole numbers become integers, the rest stays
    text."""
    fields: Dict[str, Union[int, str]] = {}
    for pair in pairs:
        key, sep, value = pair.partition('=')
        if not sep or not key.strip():
            raise ValueError(f'--metadata takes KEY=VALUE, got {pair!r}')
        value = value.strip()
        fields[key.strip()] = int(value) if value.isdigit() else value
    return fields


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f'must be > 0, got {text}')
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--index', help='model-index.yml to read')
    sub = parser.add_subparsers(dest='command', required=True)
    lst = sub.add_parser('list', help='models: name, what is published '
                         '(weights / mirror only / config only), size, '
                         'hash prefix, headline result')
    lst.add_argument('pattern', nargs='?', help='wildcard or substring')
    lst.add_argument('--names', action='store_true',
                     help='print the names only')
    info = sub.add_parser('info', help='metadata of one model')
    info.add_argument('name')
    down = sub.add_parser('download', help='fetch a checkpoint to the cache')
    down.add_argument('name', help='model name or URL')
    down.add_argument('--dir', help='cache folder ($SSQL_MM_HOME)')
    down.add_argument('--base-url', help='mirror ($SSQL_MM_BASE_URL)')
    down.add_argument('--no-progress', action='store_true')
    down.add_argument('--timeout', type=_positive, default=60.0,
                      help='longest wait for one read, seconds (default 60)')
    down.add_argument('--deadline', type=_positive,
                      help='longest time for the whole transfer (connect, '
                      'headers, body), seconds (default: '
                      '$SSQL_MM_DOWNLOAD_DEADLINE or none)')
    down.add_argument('--max-mib', type=_positive,
                      help='largest file fetched from a URL the index does '
                      'not list, MiB (default 2048); listed files stop at '
                      'their Size')
    pub = sub.add_parser('publish', help='add a checkpoint to a metafile')
    pub.add_argument('checkpoint')
    pub.add_argument('--name', required=True)
    pub.add_argument('--url', help='upload location; ending in / = folder')
    pub.add_argument('--config', help='config path from the repo root; it '
                     'must build the quantizer placement the checkpoint was '
                     "trained with (default: keep the entry's)")
    pub.add_argument('--training-data')
    pub.add_argument('--result', action='append', default=[],
                     metavar='SETTING=TOP1', help='e.g. FP=91.2, 4w4a=89.0')
    pub.add_argument('--dataset', help='evaluation data of the results')
    pub.add_argument('--task', default='Linear Evaluation',
                     help='task of the results (default: %(default)s); '
                     'results of other tasks stay in the entry')
    pub.add_argument('--note', help="the entry's Metadata.Note (default: "
                     "keep the entry's)")
    pub.add_argument('--metadata', action='append', default=[],
                     metavar='KEY=VALUE', help="another Metadata field, e.g. "
                     "'Iterations=2500', 'Batch Size=128'")
    pub.add_argument('--metafile')
    pub.add_argument('--out-dir', help='where the slim copy goes')
    pub.add_argument('--backbone-only', action='store_true',
                     help="keep only the 'backbone.*' weights")
    pub.add_argument('--trust-checkpoint', action='store_true',
                     help='load without the safe allow-list (trusted files '
                     'only)')
    table = sub.add_parser('table', help='markdown table of the zoo')
    table.add_argument('--out', help='write the docs page here')
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except SystemExit as done:
        return int(done.code or 0)
    return 0


def run(args: argparse.Namespace) -> None:
    """Carry out one command; known errors exit with one line."""
    with report_errors('model_zoo', (FileNotFoundError, ValueError)):
        if args.command == 'list':
            rows = (list_models(args.pattern, index=args.index) if args.names
                    else model_zoo_rows(args.pattern, index=args.index))
            print('\n'.join(rows))
        elif args.command == 'info':
            entry = get_model_entry(args.name, index=args.index)
            for key, value in vars(entry).items():
                print(f'{key}: {value}')
        elif args.command == 'download':
            print(download_checkpoint(
                args.name, dir=args.dir, base_url=args.base_url,
                progress=not args.no_progress, index=args.index,
                timeout=args.timeout, deadline=args.deadline,
                max_bytes=None if args.max_mib is None else int(
                    args.max_mib * 2**20)))
        elif args.command == 'publish':
            metadata = parse_metadata(args.metadata)
            if args.note is not None:
                metadata['Note'] = args.note
            entry = publish_checkpoint(
                args.checkpoint, args.name, metafile=args.metafile,
                out_dir=args.out_dir, url=args.url, config=args.config,
                training_data=args.training_data,
                results=parse_results(args.result), dataset=args.dataset,
                task=args.task,
                index=args.index, trusted=args.trust_checkpoint,
                backbone_only=args.backbone_only, metadata=metadata)
            print(f"{entry['Name']}: {entry['Metadata']['Checkpoint']}")
        elif args.command == 'table':
            if args.out:
                atomic_write_bytes(
                    model_zoo_markdown(args.index).encode('utf-8'), args.out)
            else:
                print(model_zoo_table(args.index), end='')


if __name__ == '__main__':
    sys.exit(main())
