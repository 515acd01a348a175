"""Tests of gdiff.train / gdiff.train_state: steps, sharding, resume, NaN guard, logs.

The data come from a small in-memory stand-in for gdiff.data.dataset (same
interface: make_loader / load_split), written to a temporary W/embedding.
"""

import functools
import json
import os
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import base
from gdiff import augment, distributed, models, rng, sample, train
from gdiff import train_state as ts

G, C, K = 16, 8, 2


def tiny_config(name='mlp', num_steps=40):
  """One step config for all tests, so that the compiled step is shared (see get_trainer)."""
  c = base.get_config()
  m = c.model
  m.name = name
  m.mlp_widths = (16, 16, 16)  # few distinct shapes: fewer eager compiles in the no-jit test
  m.norm_groups = 4
  m.cnn_base_width = 8
  m.cnn_channel_mults = (1, 2)
  m.cnn_num_res_blocks = 1
  m.cnn_attention_factors = (2,)
  m.num_heads = 2
  m.gate_hidden = 8
  m.transformer_genes_per_token = 4
  m.transformer_layers = 1
  m.transformer_dim = 16
  m.transformer_heads = 2
  c.diffusion.num_steps = 50
  c.input.batch_size = 8
  c.train.num_steps = num_steps
  c.train.learning_rate = 3e-3
  c.train.warmup_steps = 2
  c.train.log_every = 1
  c.train.eval_every = 5
  c.train.checkpoint_every = 5
  c.train.ema_decay = 0.9
  return c


def make_mask():
  mask = np.ones((G, C), bool)
  mask[:, 5:] = False  # slots 5..7 are padding everywhere
  mask[-3:] = False  # the last 3 groups are padding
  return mask


def make_split(n, seed):
  rng = np.random.default_rng(seed)
  label = rng.integers(0, K, n).astype(np.int32)
  centre = np.where(label[:, None, None] == 0, 1.0, -1.0)
  emb = (centre + 0.3 * rng.standard_normal((n, G, C))) * make_mask()
  return {'emb': emb.astype(np.float32), 'label': label}


class _Iterator:
  """Deterministic shuffled batches with get_state/set_state, like grain's."""

  def __init__(self, split, batch_size, seed, nan_after):
    self.split, self.batch_size, self.seed, self.nan_after = split, batch_size, seed, nan_after
    self.pos = 0

  def __next__(self):
    n = len(self.split['label'])
    per_epoch = n // self.batch_size
    epoch, i = divmod(self.pos, per_epoch)
    order = np.random.default_rng([self.seed, epoch]).permutation(n)
    rows = order[i * self.batch_size : (i + 1) * self.batch_size]
    batch = {k: v[rows] for k, v in self.split.items()}
    if self.nan_after is not None and self.pos >= self.nan_after:
      batch['emb'] = np.full_like(batch['emb'], np.nan)
    self.pos += 1
    return batch

  def get_state(self):
    return json.dumps({'pos': self.pos}).encode()

  def set_state(self, state):
    self.pos = json.loads(state.decode())['pos']


class _Loader:
  def __init__(self, split, batch_size, seed, nan_after):
    self.args = (split, batch_size, seed, nan_after)

  def __iter__(self):
    return _Iterator(*self.args)


def fake_data(nan_after=None):
  """Stand-in for gdiff.data.dataset: W/embedding/{split}.npz; NaN batches from `nan_after`."""

  def load_split(emb_dir, split):
    with np.load(os.path.join(emb_dir, f'{split}.npz')) as f:
      return {k: f[k] for k in f.files}

  def make_loader(
    emb_dir, split, batch_size, seed, num_epochs=None, shard_index=0, shard_count=1, worker_count=0
  ):
    data = load_split(emb_dir, split)
    data = {k: v[shard_index::shard_count] for k, v in data.items()}
    return _Loader(data, batch_size, seed, nan_after)

  return types.SimpleNamespace(load_split=load_split, make_loader=make_loader)


def write_workdir(path):
  emb_dir = os.path.join(path, 'embedding')
  os.makedirs(emb_dir)
  np.save(os.path.join(emb_dir, 'mask.npy'), make_mask())
  with open(os.path.join(emb_dir, 'manifest.json'), 'w') as f:
    json.dump(
      {
        'num_groups': G,
        'slots': C,
        'classes': ['a', 'b'],
        'splits': {'train': 64, 'val': 12, 'test': 0},
      },
      f,
    )
  np.savez(os.path.join(emb_dir, 'train.npz'), **make_split(64, 0))
  np.savez(os.path.join(emb_dir, 'val.npz'), **make_split(12, 1))
  return str(path)


def make_trainer(config, devices):
  mc = models.model_config(config, G, C, K, mask_GxC=make_mask())
  return train.get_trainer(mc, config, distributed.make_mesh(devices))


def batch_of(trainer, seed=0):
  return trainer.global_batch({k: v[:8] for k, v in make_split(8, seed).items()})


def test_jit_step_equals_unjitted_step():
  config = tiny_config('mlp')
  trainer = make_trainer(config, jax.devices()[:1])
  key = jax.random.key(3)
  state = trainer.init(jax.random.key(0))
  raw = functools.partial(
    ts.train_step,
    model=trainer.model,
    tx=trainer.tx,
    schedule=trainer.schedule,
    mask_GxC=trainer.mask_GxC,
    num_classes=K,
    label_dropout=0.1,
    ema_decay=0.9,
  )
  assert trainer.sc.label_dropout == 0.1 and trainer.sc.ema_decay == 0.9
  batch = batch_of(trainer)
  with jax.disable_jit():
    want, want_m = raw(state, batch, key)
  got, got_m = trainer.train_step(state, batch, key)
  np.testing.assert_allclose(got_m['loss'], want_m['loss'], rtol=1e-5)
  for a, b in zip(jax.tree.leaves(got.params), jax.tree.leaves(want.params)):
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4)
  assert int(got.step) == 1


def test_ema_follows_its_formula():
  # Known answer: after steps 0 and 1 from ema = params_0, with warm-up decay
  # d_s = min(0.9, (1 + s) / (10 + s)): ema_2 = d_1 (d_0 p0 + (1 - d_0) p1) + (1 - d_1) p2.
  trainer = make_trainer(tiny_config('mlp'), jax.devices()[:1])
  state = trainer.init(jax.random.key(0))
  p0 = jax.tree.map(np.array, state.params)  # copies: the state is donated
  state, _ = trainer.train_step(state, batch_of(trainer, 0), jax.random.key(1))
  p1 = jax.tree.map(np.array, state.params)
  state, _ = trainer.train_step(state, batch_of(trainer, 1), jax.random.key(1))
  p2 = jax.tree.map(np.array, state.params)
  d0, d1 = 1 / 10, 2 / 11
  want = jax.tree.map(lambda a, b, c: d1 * (d0 * a + (1 - d0) * b) + (1 - d1) * c, p0, p1, p2)
  moved = jax.tree.map(lambda a, c: np.max(np.abs(a - c)), p0, p2)
  assert max(jax.tree.leaves(moved)) > 1e-4
  for got, expected in zip(jax.tree.leaves(state.ema_params), jax.tree.leaves(want)):
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


def test_grad_norm_only_on_logged_steps_without_clipping(tmp_path):
  # Without clipping the norm is a pass of its own: the unlogged step skips it, makes the
  # same update, and the log still has the norm at every logged step.
  config = tiny_config('mlp', num_steps=7)  # the run below reuses this trainer's steps
  config.train.grad_clip = 0.0
  config.train.log_every = 3
  trainer = make_trainer(config, jax.devices())
  assert trainer.train_step is not trainer.train_step_logged
  batch, key = batch_of(trainer), jax.random.key(1)
  fast, fast_m = trainer.train_step(trainer.init(jax.random.key(0)), batch, key)
  logged, logged_m = trainer.train_step_logged(trainer.init(jax.random.key(0)), batch, key)
  assert set(fast_m) == {'loss'} and set(logged_m) == {'loss', 'grad_norm'}
  assert float(logged_m['grad_norm']) > 0
  for a, b in zip(jax.tree.leaves(fast.params), jax.tree.leaves(logged.params)):
    np.testing.assert_array_equal(a, b)
  workdir = write_workdir(tmp_path)
  train.train_and_evaluate(config, workdir, data=fake_data())
  logged_steps = [r['step'] for r in read_jsonl(workdir) if 'grad_norm' in r]
  assert logged_steps == [3, 6, 7]
  # With clipping the norm is computed anyway: one compiled step serves both.
  clipped = make_trainer(tiny_config('mlp'), jax.devices()[:1])
  assert clipped.train_step is clipped.train_step_logged


@pytest.mark.parametrize('segments,prediction', [(0.0, 'eps'), (2.0, 'v')])
def test_two_devices_equal_one_device_and_no_recompilation(segments, prediction):
  # Recombination draws partners across the whole global batch (across devices).
  assert len(jax.devices()) >= 2, 'conftest should give 2 fake CPU devices'
  config = tiny_config('mlp')
  config.train.recombine_segment_groups = segments
  config.diffusion.prediction = prediction
  results = []
  for devices in (jax.devices()[:1], jax.devices()[:2]):
    trainer = make_trainer(config, devices)
    state = trainer.init(jax.random.key(0))
    for i in range(3):
      state, metrics = trainer.train_step(state, batch_of(trainer, seed=i), jax.random.key(1))
    # One compilation for all steps: the state's shardings and dtypes are stable.
    assert trainer.train_step._cache_size() == 1
    results.append((jax.device_get(state.params), float(metrics['loss'])))
  (p1, l1), (p2, l2) = results
  np.testing.assert_allclose(l1, l2, rtol=1e-5)
  # Adam divides by sqrt(v): float rounding differences of the gradient sum
  # (one device vs two partial sums) grow a little where gradients are tiny.
  for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p2)):
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_noise_differs_between_devices():
  """Two identical examples on the two devices must see different t and noise."""
  trainer = make_trainer(tiny_config('mlp'), jax.devices()[:2])
  split = make_split(1, 0)
  same = {k: np.repeat(v, 8, axis=0) for k, v in split.items()}
  params = trainer.init(jax.random.key(0)).params
  fn = trainer.eval_step
  batch = trainer.global_batch({**same, 'weight': np.eye(8, dtype=np.float32)[0]})
  first, _ = fn(params, batch, jax.random.key(5))
  batch = trainer.global_batch({**same, 'weight': np.eye(8, dtype=np.float32)[4]})
  other, _ = fn(params, batch, jax.random.key(5))
  assert abs(float(first) - float(other)) > 1e-6


def read_jsonl(workdir):
  with open(os.path.join(workdir, 'logs', 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


def test_loss_falls_and_logs_and_best_checkpoint(tmp_path):
  workdir = write_workdir(tmp_path)
  config = tiny_config('mlp')
  config.train.eval_every = 15
  config.train.checkpoint_every = 20
  last = train.train_and_evaluate(config, workdir, data=fake_data())
  records = read_jsonl(workdir)
  losses = [r['loss'] for r in records if 'loss' in r]
  assert len(losses) == 40
  assert np.mean(losses[-10:]) < 0.65 * np.mean(losses[:5]), losses
  vals = [r for r in records if 'val_loss' in r]
  assert [r['step'] for r in vals] == [15, 30, 40]
  assert vals[-1]['val_loss'] < 0.5 * vals[0]['val_loss'] + 0.5, vals
  assert last['step'] == 40
  assert any(f.startswith('events.out.tfevents') for f in os.listdir(f'{workdir}/logs'))
  params, step = sample.restore_params(config, workdir, 'best')
  best_step = min(vals, key=lambda r: r['val_loss_ema'])['step']
  assert step == best_step
  latest, step = sample.restore_params(config, workdir, 'latest', use_ema=False)
  assert step == 40
  assert jax.tree.structure(params) == jax.tree.structure(latest)
  with pytest.raises(train.InputError, match='sample.checkpoint=7'):
    sample.restore_params(config, workdir, 7)


def test_resume_equals_uninterrupted(tmp_path):
  config = tiny_config('mlp')
  straight = write_workdir(tmp_path / 'a')
  train.train_and_evaluate(config, straight, data=fake_data(), stop_after=10)
  resumed = write_workdir(tmp_path / 'b')
  train.train_and_evaluate(config, resumed, data=fake_data(), stop_after=6)
  _, step = sample.restore_params(config, resumed, 'latest')
  assert step == 6
  train.train_and_evaluate(config, resumed, data=fake_data(), stop_after=10)
  for use_ema in (False, True):
    a, sa = sample.restore_params(config, straight, 'latest', use_ema=use_ema)
    b, sb = sample.restore_params(config, resumed, 'latest', use_ema=use_ema)
    assert sa == sb == 10
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
      np.testing.assert_allclose(x, y, atol=1e-6)
  losses = [r['loss'] for r in read_jsonl(resumed) if 'loss' in r]
  want = [r['loss'] for r in read_jsonl(straight) if 'loss' in r]
  assert losses == pytest.approx(want, rel=1e-5)


def test_nan_stops_with_clear_error_and_keeps_last_good_checkpoint(tmp_path):
  workdir = write_workdir(tmp_path)
  config = tiny_config('mlp')
  config.train.eval_every = 0
  config.train.checkpoint_every = 4
  config.train.ema_decay = 0.0  # also covers training without EMA (ema_params None)
  with pytest.raises(FloatingPointError, match='diverged at step 10'):
    train.train_and_evaluate(config, workdir, data=fake_data(nan_after=9))
  params, step = sample.restore_params(config, workdir, 'latest', use_ema=False)
  assert step == 8
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(params))
  # No val split scores and no EMA: 'best' falls back to the latest, EMA to the raw params.
  best, best_step = sample.restore_params(config, workdir, 'best', use_ema=True)
  assert best_step == 8
  for a, b in zip(jax.tree.leaves(best), jax.tree.leaves(params)):
    np.testing.assert_array_equal(a, b)


def test_batch_size_must_divide_over_devices(tmp_path):
  workdir = write_workdir(tmp_path)
  config = tiny_config('mlp')
  config.input.batch_size = 7
  with pytest.raises(train.InputError, match='input.batch_size'):
    train.train_and_evaluate(config, workdir, data=fake_data())


def test_optimizer_schedule_warms_up_and_decays():
  config = tiny_config()
  config.train.warmup_steps = 10
  config.train.num_steps = 110
  lr = ts.learning_rate_schedule(config.train)
  assert float(lr(0)) == 0.0
  assert float(lr(5)) == pytest.approx(0.5 * config.train.learning_rate)
  assert float(lr(10)) == pytest.approx(config.train.learning_rate)
  assert float(lr(60)) == pytest.approx(0.5 * config.train.learning_rate, rel=1e-3)
  assert float(lr(110)) == pytest.approx(0.0, abs=1e-9)
  assert jnp.isfinite(lr(200))


def test_recombination_feeds_the_loss_the_mosaic():
  config = tiny_config('mlp')
  config.train.recombine_segment_groups = 2.0
  trainer = make_trainer(config, jax.devices()[:1])
  plain = make_trainer(tiny_config('mlp'), jax.devices()[:1])
  assert trainer.sc.recombine_segment_groups == 2.0 and plain.sc.recombine_segment_groups == 0
  key, batch = jax.random.key(3), batch_of(trainer)
  mosaic = augment.recombine(
    rng.substream(jax.random.fold_in(key, 0), 'augment'), batch['emb'], batch['label'], 2.0
  )
  assert not np.array_equal(mosaic, batch['emb'])
  _, want = plain.train_step(plain.init(jax.random.key(0)), {**batch, 'emb': mosaic}, key)
  _, got = trainer.train_step(trainer.init(jax.random.key(0)), batch, key)
  _, unchanged = plain.train_step(plain.init(jax.random.key(0)), batch, key)
  np.testing.assert_allclose(got['loss'], want['loss'], rtol=1e-6)
  assert abs(float(got['loss']) - float(unchanged['loss'])) > 1e-6
