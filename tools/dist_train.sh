#!/usr/bin/env bash
# DDP training with torchrun (see _torchrun.sh for devices and multi-node):
#   bash tools/dist_train.sh CONFIG NPROC [train.py options...]
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 CONFIG NPROC [tools/train.py options...]" >&2
  exit 2
fi
source "$(dirname "$0")/_torchrun.sh"
run_torchrun train.py "$2" "$1" "${@:3}"
