#!/usr/bin/env bash
# Set up ssd_plugin from nothing: a .venv at the repository root with the pinned
# stack of requirements/constraints.txt and the plugin in editable mode.
#
# Idempotent: a second run checks what is installed and takes seconds. pip's
# wheel cache keeps the compiled mmcv, so even a new .venv on the same machine
# skips the ~7 minute compile.
#
# Environment:
#   PYTHON=python3.11   interpreter for the new .venv (default: python3)
#   A CUDA machine: create .venv and install your CUDA build of torch into it
#   first (.venv/bin/pip install torch==2.13.0 --index-url <your CUDA index>);
#   this script keeps any torch >= 2.6 it finds and compiles mmcv with CUDA
#   (FORCE_CUDA=1) when nvcc and a CUDA torch are both present.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}
VENV="$ROOT/.venv"
VPY="$VENV/bin/python"
CONSTRAINTS="$ROOT/requirements/constraints.txt"
STAMP="$VENV/.ssd_plugin_setup"

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }
pin() { sed -n "s/^$1==//p" "$CONSTRAINTS"; }
# pip's own exit status counts; the filter only hides one harmless warning
# that some package mirrors print for every package.
pip_install() {
  "$VPY" -m pip install --quiet --disable-pip-version-check "$@" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  return "${PIPESTATUS[0]}"
}

# --- checks on the machine -------------------------------------------------
command -v "$PYTHON" >/dev/null || die "no '$PYTHON' on PATH; install Python 3.9-3.12 or set PYTHON=/path/to/python3.11"
"$PYTHON" -c 'import sys; sys.exit(not ((3, 9) <= sys.version_info[:2] <= (3, 12)))' \
  || die "$("$PYTHON" -V 2>&1) is outside 3.9-3.12, the range mmcv 2.1.0 and mmdet 3.3.0 support; install Python 3.11 and run PYTHON=python3.11 $0"
command -v "${CXX:-c++}" >/dev/null || command -v g++ >/dev/null \
  || die "no C++ compiler: mmcv's ops are compiled from source. Install one (Debian/Ubuntu: apt-get install g++) and run again"

# --- fast path: nothing changed since the last successful run ----------------
fingerprint=$(cat "$CONSTRAINTS" setup.py tools/setup_env.sh | cksum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$fingerprint" ] \
   && "$VPY" -c 'import mmcv.ops, mmdet, ssd_plugin' 2>/dev/null; then
  log "already set up ($VENV); nothing to do"
  exit 0
fi

# --- the virtual environment -------------------------------------------------
if [ ! -x "$VPY" ]; then
  log "creating $VENV with $("$PYTHON" -V 2>&1)"
  "$PYTHON" -m venv "$VENV"
fi
log "build tools: setuptools>=77,<81 (mmcv's setup.py imports pkg_resources), wheel, ninja"
pip_install "setuptools$(sed -n 's/^setuptools//p' "$CONSTRAINTS")" wheel ninja

# --- torch: keep a usable one, else install the pinned one -----------------
TORCH_PIN=$(pin torch)
if torch_version=$("$VPY" -c 'import torch; print(torch.__version__)' 2>/dev/null); then
  "$VPY" -c 'import sys, torch; v = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2]); sys.exit(v < (2, 6))' \
    || die "torch $torch_version in $VENV is older than 2.6, which ssd_plugin needs (weights-only checkpoint loading with allow-listed types, ssd_plugin/compat.py; tested: torch $TORCH_PIN); run '$VPY -m pip install torch==$TORCH_PIN' (or your CUDA build of it) and run again"
  log "keeping torch $torch_version"
else
  log "installing torch==$TORCH_PIN"
  pip_install "torch==$TORCH_PIN"
  torch_version=$("$VPY" -W ignore -c 'import torch; print(torch.__version__)')
fi
# Later installs must never move torch (a bare 'torch' pulls GBs of CUDA).
TORCH_CONSTRAINT="$VENV/torch-constraint.txt"
echo "torch==$torch_version" > "$TORCH_CONSTRAINT"
grep -v '^torch==' "$CONSTRAINTS" >> "$TORCH_CONSTRAINT"

# --- mmengine, then mmcv compiled with its ops -------------------------------
pip_install -c "$TORCH_CONSTRAINT" "mmengine==$(pin mmengine)"
MMCV_PIN=$(pin mmcv)
if "$VPY" -c "import mmcv, mmcv.ops, sys; sys.exit(mmcv.__version__ != '$MMCV_PIN')" 2>/dev/null; then
  log "mmcv $MMCV_PIN with ops already installed"
else
  cuda=0
  if command -v nvcc >/dev/null && "$VPY" -W ignore -c 'import sys, torch; sys.exit(torch.version.cuda is None)'; then
    cuda=1
  fi
  log "compiling mmcv $MMCV_PIN ops (CUDA: $cuda), ~7 min on 2 cores the first time; pip caches the wheel"
  start=$(date +%s)
  MMCV_WITH_OPS=1 FORCE_CUDA=$cuda pip_install --no-build-isolation -c "$TORCH_CONSTRAINT" "mmcv==$MMCV_PIN"
  "$VPY" -c 'import mmcv.ops' || die "mmcv $MMCV_PIN was installed but its ops do not import; see the pip output above"
  log "mmcv ready in $(( $(date +%s) - start )) s"
fi

# --- mmdet, test tools and the plugin itself ---------------------------------
log "installing mmdet, pycocotools, openmim, pytest, hypothesis, onnx, onnxruntime, openvino and ssd_plugin (editable)"
pip_install -c "$TORCH_CONSTRAINT" "mmdet==$(pin mmdet)" "pycocotools==$(pin pycocotools)" \
  "openmim==$(pin openmim)"
pip_install -c "$TORCH_CONSTRAINT" --no-build-isolation -e ".[tests,deploy]"
"$VPY" -c 'import mmcv.ops, mmdet, ssd_plugin; print("[setup] ssd_plugin", ssd_plugin.__version__, "| mmdet", mmdet.__version__, "| mmcv", mmcv.__version__, "| torch", __import__("torch").__version__)'
echo "$fingerprint" > "$STAMP"
log "done: activate with 'source .venv/bin/activate'"
