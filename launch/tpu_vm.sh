#!/usr/bin/env bash
# Cloud TPU VM (a pod slice): run the same command on every worker; JAX detects
# the TPU topology itself (GDIFF_DISTRIBUTED=1).
#
#   launch/tpu_vm.sh TPU_NAME ZONE --config=configs/kg1.py:paper --workdir=SHARED_DIR/run1
#
# Assumes gdiff is installed on every worker (pip install -e . in ~/gdiff) and
# SHARED_DIR is a file system all workers mount (checkpoints are written by all).
set -euo pipefail
tpu=${1:?usage: launch/tpu_vm.sh TPU_NAME ZONE gdiff.main-flags...}
zone=${2:?usage: launch/tpu_vm.sh TPU_NAME ZONE gdiff.main-flags...}
shift 2
args=$(printf '%q ' "$@")
gcloud compute tpus tpu-vm ssh "$tpu" --zone="$zone" --worker=all \
  --command="cd ~/gdiff && GDIFF_DISTRIBUTED=1 python -m gdiff.main ${args}"
