"""The devices gdiff runs on: the 'data' mesh, multi-process start-up and barriers.

`make_mesh` is the one 1-D ('data',) mesh that training and sampling shard over.
`initialize` starts `jax.distributed` when launched as several processes, gated on
the environment so that a single process is a no-op: set `GDIFF_COORDINATOR`
(host:port), `GDIFF_NUM_PROCESSES` and `GDIFF_PROCESS_ID`, or run under SLURM /
Cloud TPU where JAX detects the cluster itself and `GDIFF_DISTRIBUTED=1` is set.
"""

import logging
import os

import jax

# How long a process waits at a stage barrier for the others: process 0 alone
# prepares and evaluates, which on a large cohort takes hours.
BARRIER_TIMEOUT_S = 7 * 24 * 3600
# Orbax's own barriers: through the coordination service, as `barrier` below.
_ORBAX_BARRIER_FLAG = 'experimental_orbax_use_distributed_barrier'


def make_mesh(devices=None) -> jax.sharding.Mesh:
  """A 1-D ('data',) mesh over `devices` (default: all devices of all processes)."""
  devices = jax.devices() if devices is None else list(devices)
  return jax.make_mesh(
    (len(devices),), ('data',), devices=devices, axis_types=(jax.sharding.AxisType.Auto,)
  )


def initialize() -> None:
  env = os.environ
  if 'GDIFF_COORDINATOR' in env:
    jax.distributed.initialize(
      coordinator_address=env['GDIFF_COORDINATOR'],
      num_processes=int(env['GDIFF_NUM_PROCESSES']),
      process_id=int(env['GDIFF_PROCESS_ID']),
    )
  elif env.get('GDIFF_DISTRIBUTED') == '1':
    jax.distributed.initialize()  # cluster auto-detection (SLURM, TPU VMs, ...)
  else:
    return
  _orbax_barriers_without_collectives()
  logging.info(
    'jax.distributed: process %d of %d, %d global devices',
    jax.process_index(),
    jax.process_count(),
    jax.device_count(),
  )


def _orbax_barriers_without_collectives() -> None:
  """Orbax syncs processes with a device all-gather unless told otherwise.

  Such a barrier is a collective, and collectives issued from different threads
  (orbax saves in the background) can meet in a different order on each process
  and deadlock; the coordination service's barrier cannot.
  """
  from absl import flags
  from orbax.checkpoint import multihost  # noqa: F401  (defines the flag)

  if _ORBAX_BARRIER_FLAG in flags.FLAGS:
    flags.FLAGS[_ORBAX_BARRIER_FLAG].value = True


def barrier(name: str) -> None:
  """Returns once every process has called `barrier(name)`; a no-op for one process.

  Waits on jax.distributed's coordination service, not on a device collective:
  one process may spend hours on host work (prepare, evaluate) while the others
  wait, and the wait holds no device.
  """
  if jax.process_count() == 1:
    return
  from orbax.checkpoint import multihost

  multihost.get_barrier_sync_fn()(key=name, timeout_ms=BARRIER_TIMEOUT_S * 1000)
