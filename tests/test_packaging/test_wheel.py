"""A built wheel carries the index, metafiles, configs, zoo checkpoints and
tools in ``ssql_mm/.mim/``, and the installed package finds them there."""
import glob
import hashlib
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SOURCES = ('ssql_mm', 'configs', 'tools', 'checkpoints', 'requirements',
           'setup.py', 'MANIFEST.in', 'model-index.yml')


def _source_copy(dest):
    """The files a wheel is built from, without build or cache leftovers."""
    for name in SOURCES:
        src = osp.join(ROOT, name)
        if osp.isdir(src):
            shutil.copytree(src, osp.join(dest, name),
                            ignore=shutil.ignore_patterns(
                                '__pycache__', '*.pyc', '.mim'))
        else:
            shutil.copy2(src, dest)


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('wheel')
    src, dist = tmp / 'src', tmp / 'dist'
    src.mkdir()
    _source_copy(str(src))
    # A zoo entry whose weights ship with the package, as the metafile
    # names them: relative to the index.
    weights = b'not a real checkpoint, only bytes to verify'
    (src / 'checkpoints' / 'tiny_0123abcd.pth').write_bytes(weights)
    with open(src / 'configs' / 'ssql' / 'metafile.yml', 'a') as f:
        f.write(textwrap.dedent(f"""\
            - Name: tiny-shipped
              In Collection: SSQL
              Metadata:
                Checkpoint:
                  SHA256: {hashlib.sha256(weights).hexdigest()}
                  Size: {len(weights)}
              Weights: checkpoints/tiny_0123abcd.pth
              Config: configs/ssql/ssql-simsiam_resnet18_4xb128-coslr-400e_cifar10.py
            """))
    subprocess.run([
        sys.executable, '-m', 'pip', 'wheel', '--no-deps',
        '--no-build-isolation', '--no-index', '-q', str(src), '-w', str(dist)
    ], check=True, cwd=str(tmp))
    (path, ) = glob.glob(str(dist / 'ssql_mm-*.whl'))
    return path, weights


@pytest.mark.slow
def test_wheel_carries_index_configs_checkpoints_and_tools(wheel):
    path, _ = wheel
    names = set(zipfile.ZipFile(path).namelist())
    mim = 'ssql_mm/.mim/'
    assert mim + 'model-index.yml' in names
    assert mim + 'configs/ssql/metafile.yml' in names
    configs = {
        osp.relpath(p, ROOT)
        for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                           recursive=True)
    }
    assert configs and {mim + c for c in configs} <= names
    assert mim + 'checkpoints/README.md' in names
    assert mim + 'checkpoints/tiny_0123abcd.pth' in names
    assert mim + 'tools/model_zoo.py' in names
    assert not [n for n in names if n.startswith('tests/')]
    assert not [n for n in names if '__pycache__' in n]
    metadata = next(n for n in names if n.endswith('.dist-info/METADATA'))
    text = zipfile.ZipFile(path).read(metadata).decode()
    assert 'Provides-Extra: tests' in text
    assert 'Provides-Extra: deploy' in text


@pytest.mark.slow
def test_installed_package_lists_fetches_and_builds_from_its_own_files(
        wheel, tmp_path):
    path, weights = wheel
    site = tmp_path / 'site'
    zipfile.ZipFile(path).extractall(site)
    script = textwrap.dedent("""
        import json, sys
        from ssql_mm.apis import download_checkpoint, get_model, list_models
        from ssql_mm.apis.model_index import resource_root
        name = 'ssql-simsiam_resnet18_4xb128-coslr-400e_cifar10'
        model = get_model(name, pretrained=False)
        print(json.dumps(dict(
            root=str(resource_root()), models=list_models(),
            fetched=download_checkpoint('tiny-shipped', dir=sys.argv[1],
                                        progress=False),
            model=type(model).__name__)))
    """)
    env = dict(os.environ, PYTHONPATH=str(site), SSQL_MM_HOME=str(tmp_path))
    env.pop('SSQL_MM_MODEL_INDEX', None)
    env.pop('SSQL_MM_BASE_URL', None)
    # Run outside the repository, so only the extracted wheel is importable.
    out = subprocess.run(
        [sys.executable, '-c', script, str(tmp_path / 'cache')],
        cwd=str(tmp_path), env=env, check=True, capture_output=True,
        text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert Path(result['root']) == (site / 'ssql_mm' / '.mim').resolve()
    assert 'tiny-shipped' in result['models']
    assert 'ssql-simsiam_resnet50_8xb32-coslr-100e_in1k' in result['models']
    with open(result['fetched'], 'rb') as f:
        assert f.read() == weights
    assert result['model'] == 'SSQLSimSiam'
