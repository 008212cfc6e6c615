#!/usr/bin/env bash
# Install ssql_mm and its pinned OpenMMLab stack.
#
# Creates a virtual environment at .venv (or uses the active one), then installs
# torch/torchvision, mmcv 2.1.0 with ops (from a wheel directory when pip is offered
# one through PIP_FIND_LINKS or --find-links, otherwise built from the PyPI sdist),
# the rest of the stack and ssql_mm in editable mode. A second run does no heavy work, and
# returns at once when install.sh, setup.py and requirements/*.txt are those of the last
# successful install (their SHA-256 sums are kept in <venv>/.ssql_mm-install); --force checks
# everything again.
#
# Usage: bash tools/install.sh [--find-links DIR]... [--force]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0

find_links=()
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --find-links) find_links+=("--find-links" "$(cd "$2" && pwd)"); shift 2 ;;
    --find-links=*) find_links+=("--find-links" "$(cd "${1#*=}" && pwd)"); shift ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument '$1' (expected --find-links DIR or --force)" >&2; exit 2 ;;
  esac
done

log() { echo "[ssql_mm install] $*"; }

# The stamp: the repository's path and "SHA-256  path" of every file the install depends on.
VENV="${VIRTUAL_ENV:-$ROOT/.venv}"
STAMP="$VENV/.ssql_mm-install"
sha256() { if command -v sha256sum >/dev/null; then sha256sum "$@"; else shasum -a 256 "$@"; fi; }
install_state() { echo "root $ROOT"; (cd "$ROOT" && sha256 tools/install.sh setup.py requirements/*.txt); }
state="$(install_state)"
previous="$(cat "$STAMP" 2>/dev/null || true)"
if [ "$force" = 0 ] && [ -x "$VENV/bin/python" ] && [ "$state" = "$previous" ]; then
  log "up to date: install.sh, setup.py and requirements/*.txt unchanged since the last install (--force checks again)"
  exit 0
fi
changed() {  # changed FILE...: true when a file differs from the stamp of an earlier install
  [ -n "$previous" ] || return 1
  local file line
  for file in "$@"; do
    line="$(cd "$ROOT" && sha256 "$file")"
    grep -qxF "$line" <<<"$previous" || return 0
  done
  return 1
}

if [ -z "${VIRTUAL_ENV:-}" ]; then
  if [ ! -x "$ROOT/.venv/bin/python" ]; then
    log "creating virtual environment at .venv"
    python3 -m venv "$ROOT/.venv"
  fi
  # shellcheck disable=SC1091
  source "$ROOT/.venv/bin/activate"
fi
PY="$(command -v python)"
log "using $("$PY" --version) at $PY"
pip_install() { "$PY" -m pip install --disable-pip-version-check "${find_links[@]}" "$@"; }

has_version() {  # has_version MODULE VERSION
  "$PY" - "$1" "$2" <<'PYEOF' 2>/dev/null
import importlib, sys
mod = importlib.import_module(sys.argv[1])
sys.exit(0 if mod.__version__.split('+')[0] == sys.argv[2] else 1)
PYEOF
}

# 1. torch and torchvision.
if has_version torch "$TORCH_VERSION" && has_version torchvision "$TORCHVISION_VERSION"; then
  log "torch $TORCH_VERSION and torchvision $TORCHVISION_VERSION already installed"
else
  log "installing torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION"
  pip_install "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
fi

# 2. mmcv with ops. Check the compiled extension, not only the version.
mmcv_ok() {
  "$PY" -c "import mmcv, mmcv.ops; from mmcv.ops import nms; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null
}
if mmcv_ok; then
  log "mmcv $MMCV_VERSION with ops already installed"
else
  # numpy/opencv first: mmcv's photometric transforms overflow under NumPy 2.
  pip_install "numpy<2" "opencv-python<4.11" "mmengine==0.10.7" "setuptools<81"
  log "looking for a prebuilt mmcv $MMCV_VERSION wheel"
  if pip_install --only-binary mmcv --no-deps "mmcv==$MMCV_VERSION" && mmcv_ok; then
    log "installed mmcv $MMCV_VERSION from a wheel"
  else
    log "no usable mmcv wheel: building mmcv $MMCV_VERSION with ops from source."
    log "This takes 15-30 minutes on 2 cores."
    build_dir="$(mktemp -d)"
    trap 'rm -rf "$build_dir"' EXIT
    # mmcv's setup.py imports pkg_resources: build in this environment.
    pip_install "setuptools<81" wheel ninja
    "$PY" -m pip download --no-deps --no-binary :all: --no-build-isolation \
      "mmcv==$MMCV_VERSION" -d "$build_dir"
    tar xzf "$build_dir"/mmcv-"$MMCV_VERSION".tar.gz -C "$build_dir"
    src="$build_dir/mmcv-$MMCV_VERSION"
    # mmcv's setup.py forces C++17; torch >= 2.10 headers need C++20.
    cxx_std="$("$PY" -c "import torch; v = tuple(int(x) for x in torch.__version__.split('.')[:2]); print('c++20' if v >= (2, 10) else 'c++17')")"
    sed -i "s/-std=c++17/-std=${cxx_std}/g" "$src/setup.py"
    (cd "$src" && MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
      "$PY" -m pip install --no-build-isolation --no-deps .)
    mmcv_ok || { echo "install.sh: mmcv $MMCV_VERSION built but 'import mmcv.ops' fails" >&2; exit 1; }
  fi
fi

# 3. The rest of the stack and ssql_mm itself (pins live in requirements/runtime.txt), again
#    when those pins or setup.py changed since the last install.
if ! changed setup.py requirements/runtime.txt requirements/tests.txt \
   && "$PY" -c "import pkg_resources, ssql_mm, mmpretrain, mmdet, mmseg" 2>/dev/null \
   && "$PY" -m pip check >/dev/null 2>&1; then
  log "OpenMMLab stack and ssql_mm already installed"
else
  pip_install -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt"
  pip_install --no-deps -e "$ROOT"
fi

# 4. The deploy extra: onnx and onnxruntime (pins live in requirements/deploy.txt).
deploy_ok() {
  "$PY" - "$ROOT/requirements/deploy.txt" <<'PYEOF' 2>/dev/null
import sys
from importlib.metadata import version
pins = [l.split('#')[0].strip() for l in open(sys.argv[1])]
sys.exit(0 if all(version(p.split('==')[0]) == p.split('==')[1] for p in pins if p) else 1)
PYEOF
}
if deploy_ok; then
  log "deploy extra (onnx, onnxruntime) already installed"
else
  pip_install -r "$ROOT/requirements/deploy.txt" "numpy<2"
fi
versions="$("$PY" -c 'import torch, mmcv, mmengine, mmpretrain, mmdet, mmseg, ssql_mm; print("torch", torch.__version__, "mmcv", mmcv.__version__, "mmengine", mmengine.__version__, "mmpretrain", mmpretrain.__version__, "mmdet", mmdet.__version__, "mmseg", mmseg.__version__, "ssql_mm", ssql_mm.__version__)')"
log "done: $versions"
# Written last, through a rename: a failed or interrupted install leaves the old stamp.
echo "$state" > "$STAMP.tmp.$$" && mv -f "$STAMP.tmp.$$" "$STAMP"

