import os
import os.path as osp
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

# Read at run time, so a built package carries them in ssql_mm/.mim/ (the
# layout of OpenMMLab packages, which mim uses); a source checkout or an
# editable install reads them at the repository root
# (ssql_mm.apis.model_index.resource_root).
MIM_FILES = ('configs', 'model-index.yml', 'checkpoints', 'tools')


class BuildPyWithMim(build_py):
    """build_py that also copies ``MIM_FILES`` into ``ssql_mm/.mim/`` of the
    build folder (the source tree is left untouched)."""

    def run(self) -> None:
        super().run()
        if getattr(self, 'editable_mode', False):
            return
        root = osp.dirname(osp.abspath(__file__))
        mim = osp.join(self.build_lib, 'ssql_mm', '.mim')
        os.makedirs(mim, exist_ok=True)
        for name in MIM_FILES:
            src, dst = osp.join(root, name), osp.join(mim, name)
            if osp.isdir(dst):
                shutil.rmtree(dst)
            if osp.isdir(src):
                shutil.copytree(
                    src, dst,
                    ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
            elif osp.isfile(src):
                shutil.copy2(src, dst)


def read_requirements(path: str) -> list:
    with open(path) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith('#')]

version: dict = {}
with open('ssql_mm/version.py') as f:
    exec(f.read(), version)

setup(
    name='ssql_mm',
    version=version['__version__'],
    packages=find_packages(exclude=('tests*', 'configs*', 'tools*')),
    install_requires=read_requirements('requirements/runtime.txt'),
    extras_require={
        'tests': read_requirements('requirements/tests.txt'),
        'deploy': (read_requirements('requirements/deploy.txt')
                   if osp.isfile('requirements/deploy.txt') else []),
    },
    cmdclass={'build_py': BuildPyWithMim},
    python_requires='>=3.9',
)
