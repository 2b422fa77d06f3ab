#!/usr/bin/env bash
# Set up ssd_plugin from nothing: a .venv at the repository root with the pinned
# stack of requirements/constraints.txt and the plugin in editable mode.
#
# Idempotent: a second run checks what is installed and takes seconds. pip's
# wheel cache keeps the compiled CPU mmcv, so even a new .venv on the same
# machine skips the ~7 minute compile.
#
# Environment:
#   PYTHON=python3.11   interpreter for the new .venv (default: python3)
#   A CUDA machine: create .venv and install your CUDA build of torch into it
#   first (.venv/bin/pip install torch==2.13.0 --index-url <your CUDA index>);
#   this script keeps any torch >= 2.6 it finds and compiles mmcv with CUDA
#   (FORCE_CUDA=1) when nvcc and a CUDA torch are both present. It checks how
#   the installed mmcv was compiled (mmcv.ops.get_compiling_cuda_version), so
#   a CPU-only mmcv left under a CUDA torch is compiled again, with CUDA and
#   without pip's cache (which does not tell CPU and CUDA builds apart).
#
# Sourced (`source tools/setup_env.sh`), it only defines its functions.

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# probe_stack PYTHON MMCV_VERSION: prints "TORCH_CUDA GPU MMCV" for the
# interpreter's packages: TORCH_CUDA is torch's CUDA version or "none", GPU 1
# when torch sees one (else 0), MMCV "cuda" or "cpu" (how mmcv MMCV_VERSION's
# ops were compiled) or "none" (no mmcv, another version, or ops that do not
# import).
probe_stack() {
  "$1" -W ignore - "$2" <<'PY' 2>/dev/null || echo "none 0 none"
import sys
try:
    import torch
    torch_cuda, gpu = torch.version.cuda or 'none', int(torch.cuda.is_available())
except Exception:
    torch_cuda, gpu = 'none', 0
try:
    import mmcv
    import mmcv.ops
    assert mmcv.__version__ == sys.argv[1]
    # 'not available' in a build without CUDA (mmcv/ops/csrc/pytorch/info.cpp)
    built = mmcv.ops.get_compiling_cuda_version()
    mmcv_state = 'cpu' if built == 'not available' else 'cuda'
except Exception:
    mmcv_state = 'none'
print(torch_cuda, gpu, mmcv_state)
PY
}

# mmcv_plan TORCH_CUDA GPU NVCC MMCV: what to do with mmcv (NVCC: 1 when nvcc
# is on PATH; the rest as probe_stack prints them). Prints "keep", "build-cpu"
# or "build-cuda"; fails naming the fix when a GPU would use a CPU-only mmcv.
mmcv_plan() {
  local torch_cuda=$1 gpu=$2 nvcc=$3 mmcv=$4 want=cpu
  if [ "$torch_cuda" != none ] && [ "$nvcc" = 1 ]; then
    want=cuda
  elif [ "$torch_cuda" != none ] && [ "$gpu" = 1 ] && [ "$mmcv" != cuda ]; then
    # Training would run (the assigner is pure torch) and the first
    # validation would fail in mmcv's NMS on CUDA tensors, hours later.
    die "torch is a CUDA $torch_cuda build and sees a GPU, but nvcc is not on PATH and mmcv has no CUDA ops (NMS on the GPU): install the CUDA $torch_cuda toolkit (nvcc; set CUDA_HOME) and run again, or install torch's CPU build"
  fi
  if [ "$mmcv" = "$want" ] || { [ "$mmcv" = cuda ] && [ "$torch_cuda" != none ]; }; then
    echo keep
  else
    echo "build-$want"
  fi
}

main() {
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}
VENV="$ROOT/.venv"
VPY="$VENV/bin/python"
CONSTRAINTS="$ROOT/requirements/constraints.txt"
STAMP="$VENV/.ssd_plugin_setup"

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
# The AVX2 emulation (tools/analysis_tools/run_as_avx2.py) compiles a small C
# library with $CC or cc; without one its tests would only be skipped.
command -v "${CC:-cc}" >/dev/null \
  || die "no C compiler '${CC:-cc}' (run_as_avx2.py builds its CPUID library with it): install one (Debian/Ubuntu: apt-get install gcc) or set CC=/path/to/gcc, and run again"

# --- fast path: nothing changed since the last successful run ----------------
# The stamp records how mmcv was compiled: a CUDA torch installed since (or a
# CPU-only mmcv under one) takes the full path.
fingerprint=$(cat "$CONSTRAINTS" setup.py tools/setup_env.sh | cksum | cut -d' ' -f1)
MMCV_PIN=$(pin mmcv)
nvcc=0
command -v nvcc >/dev/null && nvcc=1
if [ -f "$STAMP" ] && [ -x "$VPY" ]; then
  read -r torch_cuda gpu mmcv_state <<< "$(probe_stack "$VPY" "$MMCV_PIN")"
  plan=$(mmcv_plan "$torch_cuda" "$gpu" "$nvcc" "$mmcv_state")
  if [ "$plan" = keep ] && [ "$(cat "$STAMP")" = "$fingerprint mmcv=$mmcv_state" ] \
     && "$VPY" -c 'import mmdet, ssd_plugin' 2>/dev/null; then
    log "already set up ($VENV, mmcv ops: $mmcv_state); nothing to do"
    exit 0
  fi
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
read -r torch_cuda gpu mmcv_state <<< "$(probe_stack "$VPY" "$MMCV_PIN")"
plan=$(mmcv_plan "$torch_cuda" "$gpu" "$nvcc" "$mmcv_state")
if [ "$plan" = keep ]; then
  log "mmcv $MMCV_PIN with ops already installed (ops: $mmcv_state)"
else
  want=${plan#build-}
  cuda=0 no_cache=()
  if [ "$want" = cuda ]; then
    # pip's wheel cache keys a wheel by its source, not by FORCE_CUDA: a CPU
    # build cached earlier would come back. CUDA builds skip the cache.
    cuda=1 no_cache=(--no-cache-dir)
  fi
  "$VPY" -m pip uninstall --yes --quiet mmcv >/dev/null 2>&1 || true
  log "compiling mmcv $MMCV_PIN ops (CUDA: $cuda; torch CUDA: $torch_cuda), ~7 min on 2 cores for the CPU ops (cached by pip), far longer with CUDA"
  start=$(date +%s)
  MMCV_WITH_OPS=1 FORCE_CUDA=$cuda pip_install ${no_cache[@]+"${no_cache[@]}"} \
    --no-build-isolation -c "$TORCH_CONSTRAINT" "mmcv==$MMCV_PIN"
  read -r _ _ mmcv_state <<< "$(probe_stack "$VPY" "$MMCV_PIN")"
  [ "$mmcv_state" = "$want" ] || die "mmcv $MMCV_PIN was installed but its ops are '$mmcv_state' where '$want' was asked (none: they do not import); see the pip output above"
  log "mmcv ready in $(( $(date +%s) - start )) s"
fi

# --- mmdet, test tools and the plugin itself ---------------------------------
log "installing mmdet, pycocotools, openmim, pytest, hypothesis, onnx, onnxruntime, openvino and ssd_plugin (editable)"
pip_install -c "$TORCH_CONSTRAINT" "mmdet==$(pin mmdet)" "pycocotools==$(pin pycocotools)" \
  "openmim==$(pin openmim)"
pip_install -c "$TORCH_CONSTRAINT" --no-build-isolation -e ".[tests,deploy]"
"$VPY" -c 'import mmcv.ops, mmdet, ssd_plugin; print("[setup] ssd_plugin", ssd_plugin.__version__, "| mmdet", mmdet.__version__, "| mmcv", mmcv.__version__, "| torch", __import__("torch").__version__)'
echo "$fingerprint mmcv=$mmcv_state" > "$STAMP"
log "done: activate with 'source .venv/bin/activate'"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
