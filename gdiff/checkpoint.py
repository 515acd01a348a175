"""Orbax checkpoints of training: the latest states (resume) and the best on val loss.

Layout under W/checkpoints/:
  latest/<step>/state   the full `TrainState` (params, EMA, optimizer)
  latest/<step>/loader  the data iterator position (grain's handler: one JSON file per process)
  best/<step>/params    {'params', 'ema_params'} of the step with the lowest val loss

Training saves and resumes with the managers below; inference (`restore_params`)
reads the parameters alone into an abstract target, without an optimizer.
"""

from __future__ import annotations

import logging
import os

import grain
import orbax.checkpoint as ocp

from gdiff.errors import InputError

LATEST = 'latest'
BEST = 'best'
BEST_METRIC = 'val_loss'
CHECKPOINT_IDS = ('best', 'latest')  # or a step number


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
      max_to_keep=max(int(keep), 1), create=True, multiprocessing_options=_own_barriers(LATEST)
    ),
  )


def best_manager(ckpt_dir: str) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
    os.path.join(os.path.abspath(ckpt_dir), BEST),
    options=ocp.CheckpointManagerOptions(
      max_to_keep=1,
      best_fn=lambda m: m[BEST_METRIC],
      best_mode='min',
      keep_checkpoints_without_metrics=False,
      create=True,
      multiprocessing_options=_own_barriers(BEST),
    ),
  )


def save_latest(mngr: ocp.CheckpointManager, step: int, state, iterator) -> None:
  """Saves the state and the data iterator's position (one file per process)."""
  mngr.save(
    step,
    args=ocp.args.Composite(
      state=ocp.args.StandardSave(state), loader=grain.checkpoint.CheckpointSave(iterator)
    ),
  )


def restore_latest(mngr: ocp.CheckpointManager, step: int, abstract_state, iterator):
  """The state of `step` (into `abstract_state`'s shapes and shardings); moves `iterator` there."""
  out = mngr.restore(
    step,
    args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract_state),
      loader=grain.checkpoint.CheckpointRestore(iterator),
    ),
  )
  return out['state']


def save_best(mngr: ocp.CheckpointManager, step: int, params, ema_params, val_loss: float) -> None:
  """Saves {'params', 'ema_params'} (ema_params None: trained without EMA)."""
  tree = {'params': params} if ema_params is None else {'params': params, 'ema_params': ema_params}
  mngr.save(
    step,
    args=ocp.args.Composite(params=ocp.args.StandardSave(tree)),
    metrics={BEST_METRIC: float(val_loss)},
  )


# ---------------------------------------------------------------------- inference


def checkpoint_id(which) -> str | int:
  """'best', 'latest' or a step number (an int or its digits), as `sample.checkpoint` gives it."""
  if which in CHECKPOINT_IDS:
    return which
  try:
    return int(which)
  except (TypeError, ValueError):
    raise InputError(
      f"config sample.checkpoint={which!r}: use 'best', 'latest' or a step number"
    ) from None


def _reader(ckpt_dir: str, name: str) -> ocp.CheckpointManager:
  """A read-only manager: it creates, deletes and saves nothing."""
  return ocp.CheckpointManager(
    os.path.join(os.path.abspath(ckpt_dir), name),
    options=ocp.CheckpointManagerOptions(
      read_only=True,
      best_fn=(lambda m: m[BEST_METRIC]) if name == BEST else None,
      best_mode='min',
      multiprocessing_options=_own_barriers(f'{name}-reader'),
    ),
  )


def _restore_subtree(mngr: ocp.CheckpointManager, step: int, item: str, key: str, abstract_params):
  """`item[key]` of `step` alone (the rest of the item, e.g. the optimizer, is not read)."""
  target = {key: abstract_params}
  out = mngr.restore(
    step,
    args=ocp.args.Composite(
      **{
        item: ocp.args.PyTreeRestore(
          item=target,
          restore_args=ocp.checkpoint_utils.construct_restore_args(target),
          partial_restore=True,
        )
      }
    ),
  )
  return out[item][key]


def restore_params(
  ckpt_dir: str,
  abstract_params,
  which: str | int = 'best',
  use_ema: bool = True,
  has_ema: bool = True,
):
  """Parameters of a training checkpoint, for inference: no trainer or optimizer is built.

  Args:
    ckpt_dir: W/checkpoints.
    abstract_params: the parameters' `jax.ShapeDtypeStruct`s with their shardings
      (`gdiff.models.abstract_params`); restored into.
    which: 'best' (lowest val loss; the latest if there is no val split), 'latest',
      or a step number (`checkpoint_id`).
    use_ema: the EMA parameters (True) or the raw ones (also when trained without EMA).
    has_ema: whether training kept EMA parameters (`train.ema_decay` > 0).

  Returns:
    (params, step).

  Raises:
    InputError: no such checkpoint.
  """
  which = checkpoint_id(which)
  key = 'ema_params' if use_ema and has_ema else 'params'
  if which == BEST:
    best = _reader(ckpt_dir, BEST)
    step = best.best_step()
    try:
      if step is not None:
        return _restore_subtree(best, step, 'params', key, abstract_params), int(step)
    finally:
      best.close()
    logging.warning('no best checkpoint in %s; using the latest', ckpt_dir)
    which = LATEST
  latest = _reader(ckpt_dir, LATEST)
  try:
    steps = list(latest.all_steps())
    step = latest.latest_step() if which == LATEST else which
    if step is None or step not in steps:
      raise InputError(
        f'config sample.checkpoint={which!r}: no such checkpoint in '
        f'{ckpt_dir} (steps: {sorted(steps)}); run --mode=train first'
      )
    return _restore_subtree(latest, step, 'state', key, abstract_params), int(step)
  finally:
    latest.close()
