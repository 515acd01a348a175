"""Orbax checkpoints of training: the latest states (resume) and the best on val loss.

Layout under W/checkpoints/:
  latest/<step>/state   the full `TrainState` (params, EMA, optimizer)
  latest/<step>/loader  the data iterator position (grain's handler: one JSON file per process)
  best/<step>/params    {'params', 'ema_params'} of the step with the lowest val loss
"""

from __future__ import annotations

import os

import grain
import orbax.checkpoint as ocp

LATEST = 'latest'
BEST = 'best'
BEST_METRIC = 'val_loss'


def _own_barriers(name: str) -> ocp.options.MultiprocessingOptions:
  # Both managers save asynchronously at the same steps. With several processes,
  # barriers of the same name from the two managers' background threads would
  # pair up across processes in any order and deadlock; a prefix per manager
  # keeps them apart.
  return ocp.options.MultiprocessingOptions(barrier_sync_key_prefix=f'gdiff-{name}')


def latest_manager(ckpt_dir: str, keep: int) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      os.path.join(os.path.abspath(ckpt_dir), LATEST),
      options=ocp.CheckpointManagerOptions(
          max_to_keep=max(int(keep), 1), create=True,
          multiprocessing_options=_own_barriers(LATEST)))


def best_manager(ckpt_dir: str) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      os.path.join(os.path.abspath(ckpt_dir), BEST),
      options=ocp.CheckpointManagerOptions(
          max_to_keep=1, best_fn=lambda m: m[BEST_METRIC], best_mode='min',
          keep_checkpoints_without_metrics=False, create=True,
          multiprocessing_options=_own_barriers(BEST)))


def save_latest(mngr: ocp.CheckpointManager, step: int, state, iterator) -> None:
  """Saves the state and the data iterator's position (one file per process)."""
  mngr.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state), loader=grain.checkpoint.CheckpointSave(iterator)))


def restore_latest(mngr: ocp.CheckpointManager, step: int, abstract_state, iterator):
  """The state of `step` (into `abstract_state`'s shapes and shardings); moves `iterator` there."""
  out = mngr.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract_state),
      loader=grain.checkpoint.CheckpointRestore(iterator)))
  return out['state']


def restore_state(mngr: ocp.CheckpointManager, step: int, abstract_state):
  """The state of `step` alone (no data iterator), e.g. for sampling."""
  return mngr.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract_state)))['state']


def save_best(mngr: ocp.CheckpointManager, step: int, params, ema_params,
              val_loss: float) -> None:
  """Saves {'params', 'ema_params'} (ema_params None: trained without EMA)."""
  tree = {'params': params} if ema_params is None else {'params': params,
                                                         'ema_params': ema_params}
  mngr.save(step, args=ocp.args.Composite(params=ocp.args.StandardSave(tree)),
            metrics={BEST_METRIC: float(val_loss)})


def restore_best(mngr: ocp.CheckpointManager, step: int, abstract_params, has_ema: bool):
  """{'params'[, 'ema_params']} of `step` from the best manager."""
  target = {'params': abstract_params}
  if has_ema:
    target['ema_params'] = abstract_params
  return mngr.restore(step, args=ocp.args.Composite(
      params=ocp.args.StandardRestore(target)))['params']
