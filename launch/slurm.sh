#!/usr/bin/env bash
# Multi-node GPU training on SLURM: one process per GPU; jax.distributed reads
# the SLURM environment (GDIFF_DISTRIBUTED=1), and the mesh spans all GPUs.
#
#   sbatch --nodes=4 launch/slurm.sh --config=configs/als.py:paper --workdir=SHARED_DIR/run1
#
# The workdir must be on a file system every node sees (checkpoints are written
# by all processes through orbax; logs, samples and reports by process 0).
#SBATCH --job-name=gdiff
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=12
#SBATCH --time=24:00:00
set -euo pipefail
export GDIFF_DISTRIBUTED=1
# Keep the first 90% of GPU memory for XLA, as JAX does, but don't grab it all at start.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
srun --kill-on-bad-exit=1 python -m gdiff.main "$@"
