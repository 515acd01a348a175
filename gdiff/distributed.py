"""Multi-process start-up: `jax.distributed` when launched as several processes.

Gated on the environment so that a single process is a no-op: set
`GDIFF_COORDINATOR` (host:port), `GDIFF_NUM_PROCESSES` and `GDIFF_PROCESS_ID`,
or run under SLURM / Cloud TPU where JAX detects the cluster itself and
`GDIFF_DISTRIBUTED=1` is set.
"""

import logging
import os

import jax


def initialize() -> None:
  env = os.environ
  if 'GDIFF_COORDINATOR' in env:
    jax.distributed.initialize(coordinator_address=env['GDIFF_COORDINATOR'],
                               num_processes=int(env['GDIFF_NUM_PROCESSES']),
                               process_id=int(env['GDIFF_PROCESS_ID']))
  elif env.get('GDIFF_DISTRIBUTED') == '1':
    jax.distributed.initialize()  # cluster auto-detection (SLURM, TPU VMs, ...)
  else:
    return
  logging.info('jax.distributed: process %d of %d, %d global devices',
               jax.process_index(), jax.process_count(), jax.device_count())
