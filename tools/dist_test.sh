#!/usr/bin/env bash
# DDP testing with torchrun (see _torchrun.sh for devices and multi-node):
#   bash tools/dist_test.sh CONFIG CHECKPOINT NPROC [test.py options...]
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 CONFIG CHECKPOINT NPROC [tools/test.py options...]" >&2
  exit 2
fi
source "$(dirname "$0")/_torchrun.sh"
run_torchrun test.py "$3" "$1" "$2" "${@:4}"
