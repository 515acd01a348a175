#!/usr/bin/env bash
# Starts N gdiff processes on this machine (one CPU device each), coordinated on
# 127.0.0.1 through jax.distributed. For testing multi-process code without a cluster.
#
#   launch/local.sh 2 --config=configs/als.py --workdir=/tmp/w --mode=train
set -euo pipefail
n=${1:?usage: launch/local.sh NUM_PROCESSES gdiff.main-flags...}
shift
port=${GDIFF_PORT:-$((20000 + RANDOM % 20000))}
pids=()
for ((i = 0; i < n; i++)); do
  GDIFF_COORDINATOR="127.0.0.1:${port}" GDIFF_NUM_PROCESSES="$n" GDIFF_PROCESS_ID="$i" \
    JAX_PLATFORMS=cpu XLA_FLAGS="--xla_force_host_platform_device_count=1" \
    python -m gdiff.main "$@" &
  pids+=($!)
done
# If one process fails, stop the others (they would wait for it at the next barrier).
rc=0
for _ in "${pids[@]}"; do
  if ! wait -n; then
    rc=1
    kill "${pids[@]}" 2>/dev/null || true
  fi
done
exit "$rc"
