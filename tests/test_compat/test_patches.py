"""ssql_mm.compat: what ``import ssql_mm`` changes in MMEngine, said in one
line on request (never printed by the import), limited to our files and
URLs, and possible to turn off."""
import logging
import os
import subprocess
import sys

import pytest
import torch
from mmengine.runner import CheckpointLoader

import ssql_mm  # noqa: F401
from ssql_mm.compat import (PATCHES, apply_patches, applied_patches,
                            describe_patches)
from ssql_mm.compat.mmengine_patches import load_from_http_safe

PROBE = '''
import logging, os
from mmengine.fileio import get_file_backend
from mmengine.hooks import CheckpointHook
from mmengine.runner import CheckpointLoader
original = CheckpointHook._save_checkpoint_with_step
import ssql_mm
from ssql_mm.compat import applied_patches
loader = CheckpointLoader._schemes[''].__module__
print('APPLIED', ','.join(applied_patches()))
print('BACKEND', type(get_file_backend('x.pth')).__name__)
print('LOADER', loader.split('.')[0])
print('HOOK', CheckpointHook._save_checkpoint_with_step is original)
'''


def _run(args, env_value):
    env = dict(os.environ)
    env.pop('SSQL_MM_PATCHES', None)
    if env_value is not None:
        env['SSQL_MM_PATCHES'] = env_value
    done = subprocess.run([sys.executable, *args], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _probe(env_value):
    done = _run(['-c', PROBE], env_value)
    lines = (done.stdout + done.stderr).splitlines()
    facts = dict(line.split(' ', 1) for line in lines
                 if line.split(' ', 1)[0] in ('APPLIED', 'BACKEND', 'LOADER',
                                              'HOOK'))
    log = [line for line in lines if 'ssql_mm' in line and 'MMEngine' in line]
    return facts, log


@pytest.mark.slow
def test_import_applies_every_patch_silently():
    facts, log = _probe(None)
    assert facts['APPLIED'] == ','.join(PATCHES)
    assert log == []
    assert facts['BACKEND'] == 'AtomicLocalBackend'
    assert facts['LOADER'] == 'ssql_mm' and facts['HOOK'] == 'False'


@pytest.mark.slow
def test_module_lists_the_patches_in_one_line():
    lines = _run(['-m', 'ssql_mm.compat'], None).stdout.splitlines()
    assert len(lines) == 1
    for _, what in PATCHES.values():
        assert what in lines[0]
    lines = _run(['-m', 'ssql_mm.compat'], 'none').stdout.splitlines()
    assert lines == ["ssql_mm: no MMEngine patch applied "
                     "(SSQL_MM_PATCHES='none')"]


def test_patches_are_logged_at_debug_level(caplog):
    with caplog.at_level(logging.DEBUG, logger='ssql_mm.compat'):
        apply_patches()
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]
    assert caplog.records[0].getMessage() == describe_patches()
    for _, what in PATCHES.values():
        assert what in describe_patches()


@pytest.mark.slow
def test_opt_out_leaves_mmengine_as_it_is():
    facts, log = _probe('none')
    assert facts['APPLIED'] == '' and log == []
    assert facts['BACKEND'] == 'LocalBackend'
    assert facts['LOADER'] == 'mmengine' and facts['HOOK'] == 'True'
    facts, _ = _probe('safe_loading')
    assert facts['APPLIED'] == 'safe_loading'
    assert facts['BACKEND'] == 'LocalBackend' and facts['LOADER'] == 'ssql_mm'


def test_unknown_patch_name_is_refused():
    with pytest.raises(ValueError, match='choose from'):
        apply_patches(['atomic_write'])


def test_applying_again_changes_nothing():
    assert apply_patches() == []
    assert applied_patches() == list(PATCHES)


def test_foreign_urls_keep_mmengines_loader(monkeypatch, tmp_path):
    """A URL outside the model zoo is not routed through $SSQL_MM_HOME."""
    seen = []

    def mmengine_http(filename, map_location=None, model_dir=None):
        seen.append(filename)
        return {'state_dict': {'w': torch.zeros(1)}}

    monkeypatch.setattr('ssql_mm.compat.mmengine_patches.load_from_http',
                        mmengine_http)
    monkeypatch.setenv('SSQL_MM_HOME', str(tmp_path / 'home'))
    monkeypatch.setenv('SSQL_MM_MODEL_INDEX', str(tmp_path / 'none.yml'))
    monkeypatch.delenv('SSQL_MM_BASE_URL', raising=False)
    url = 'http://127.0.0.1:9/some/other_model.pth'
    assert load_from_http_safe(url)['state_dict']['w'].shape == (1, )
    assert CheckpointLoader.load_checkpoint(url)['state_dict']
    assert seen == [url, url]
    assert not (tmp_path / 'home').exists()
