"""Tests of gdiff.checkpoint's restore for inference: parameters alone, no optimizer."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from gdiff import checkpoint
from gdiff import train_state as ts
from gdiff.errors import InputError


def _params(value):
  return {
    'dense': {
      'kernel': jnp.full((3, 2), value, jnp.float32),
      'bias': jnp.full((2,), -value, jnp.float32),
    }
  }


def _state(step, ema=True):
  params = _params(float(step))
  # Any optimizer: the reader never needs to rebuild (or even know) it.
  opt_state = optax.chain(optax.clip(1.0), optax.adamw(1e-3)).init(params)
  return ts.TrainState(
    step=jnp.int32(step),
    params=params,
    ema_params=_params(step + 0.5) if ema else None,
    opt_state=opt_state,
  )


def _abstract():
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), _params(0.0))


def _save(ckpt_dir, steps, best=None, ema=True):
  """Latest states at `steps`; best {params, ema_params} at each (step, val loss) of `best`."""
  latest = checkpoint.latest_manager(ckpt_dir, keep=10)
  for step in steps:
    latest.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(_state(step, ema))))
  latest.wait_until_finished()
  latest.close()
  if best:
    mngr = checkpoint.best_manager(ckpt_dir)
    for step, loss in best:
      s = _state(step, ema)
      checkpoint.save_best(mngr, step, s.params, s.ema_params, loss)
    mngr.wait_until_finished()
    mngr.close()


def _value(params):
  return float(params['dense']['kernel'][0, 0])


def test_restores_the_chosen_step_and_parameters(tmp_path):
  ckpt_dir = str(tmp_path / 'checkpoints')
  _save(ckpt_dir, [2, 4, 6], best=[(2, 0.9), (4, 0.3), (6, 0.5)])
  restore = lambda *a, **k: checkpoint.restore_params(ckpt_dir, _abstract(), *a, **k)
  params, step = restore('best')
  assert (step, _value(params)) == (4, 4.5)  # lowest val loss, EMA parameters
  params, step = restore('best', use_ema=False)
  assert (step, _value(params)) == (4, 4.0)
  params, step = restore('latest')
  assert (step, _value(params)) == (6, 6.5)
  np.testing.assert_array_equal(params['dense']['bias'], np.full(2, -6.5))
  params, step = restore('2', use_ema=False)  # the config gives a step as digits or an int
  assert (step, _value(params)) == (2, 2.0)
  assert jax.tree.structure(params) == jax.tree.structure(_params(0.0))


def test_without_ema_or_best_falls_back_to_raw_and_latest(tmp_path):
  ckpt_dir = str(tmp_path / 'checkpoints')
  _save(ckpt_dir, [3, 5], ema=False)
  params, step = checkpoint.restore_params(
    ckpt_dir, _abstract(), 'best', use_ema=True, has_ema=False
  )
  assert (step, _value(params)) == (5, 5.0)


def test_restores_onto_the_target_sharding(tmp_path):
  ckpt_dir = str(tmp_path / 'checkpoints')
  _save(ckpt_dir, [1])
  mesh = jax.make_mesh(
    (2,), ('data',), devices=jax.devices()[:2], axis_types=(jax.sharding.AxisType.Auto,)
  )
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  abstract = jax.tree.map(
    lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated), _abstract()
  )
  params, _ = checkpoint.restore_params(ckpt_dir, abstract, 'latest')
  assert all(x.sharding == replicated for x in jax.tree.leaves(params))


@pytest.mark.parametrize(
  'which,match',
  [
    (7, r'sample.checkpoint=7: no such checkpoint .*steps: \[1\]'),
    ('last', "sample.checkpoint='last': use 'best', 'latest' or a step number"),
  ],
)
def test_unknown_checkpoint_is_an_input_error(tmp_path, which, match):
  ckpt_dir = str(tmp_path / 'checkpoints')
  _save(ckpt_dir, [1])
  with pytest.raises(InputError, match=match):
    checkpoint.restore_params(ckpt_dir, _abstract(), which)


def test_no_training_yet_is_an_input_error_and_writes_nothing(tmp_path):
  ckpt_dir = tmp_path / 'checkpoints'
  with pytest.raises(InputError, match='run --mode=train first'):
    checkpoint.restore_params(str(ckpt_dir), _abstract(), 'best')
  assert not ckpt_dir.exists()
