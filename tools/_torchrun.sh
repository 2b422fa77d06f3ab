# Sourced by dist_train.sh and dist_test.sh: run_torchrun TOOL NPROC ARGS...
# runs tools/TOOL under torchrun, one process per device (GPU, or CPU with
# --cfg-options env_cfg.dist_cfg.backend=gloo). Multi-node: NNODES,
# NODE_RANK, MASTER_ADDR, PORT as in MMDetection; PYTHON picks the interpreter.
run_torchrun() {
  local tools nproc=$2 tool=$1
  tools=$(dirname "${BASH_SOURCE[0]}")
  shift 2
  PYTHONPATH="$tools/..${PYTHONPATH:+:$PYTHONPATH}" \
  "${PYTHON:-python}" -m torch.distributed.run \
      --nnodes="${NNODES:-1}" \
      --node_rank="${NODE_RANK:-0}" \
      --master_addr="${MASTER_ADDR:-127.0.0.1}" \
      --master_port="${PORT:-29500}" \
      --nproc_per_node="$nproc" \
      "$tools/$tool" "$@" --launcher pytorch
}
