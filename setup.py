from setuptools import find_packages, setup

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
    python_requires='>=3.9',
)
