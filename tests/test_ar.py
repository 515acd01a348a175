"""The local autoregressive generator (gdiff.ar): known-answer fits and sampling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gdiff import distributed
from gdiff.ar import fit, model, sampler


def _markov(n, s, flip, seed=0, chrom=None):
  """Binary chains: x_j copies x_{j-1} except with probability `flip` (restart per chrom)."""
  rng = np.random.default_rng(seed)
  x = np.zeros((n, s), np.int8)
  x[:, 0] = rng.random(n) < 0.5
  for j in range(1, s):
    new = rng.random(n) < 0.5
    if chrom is not None and chrom[j] != chrom[j - 1]:
      x[:, j] = new
      continue
    keep = rng.random(n) >= flip
    x[:, j] = np.where(keep, x[:, j - 1], 1 - x[:, j - 1])
  return x


def _params(cfg, x, y, chrom, **kw):
  params, info = fit.fit(cfg, x, y, chrom, **kw)
  params = {k: jnp.asarray(v) for k, v in params.items()}
  params['valid'] = jnp.asarray(model.context_valid(chrom, cfg.context))
  return params, info


def _lag1_agreement(x, chrom):
  same = np.asarray(chrom)[1:] == np.asarray(chrom)[:-1]
  return float((x[:, 1:] == x[:, :-1])[:, same].mean())


def test_context_codes_shift_and_stop_at_chromosome_ends():
  x = np.array([[0, 1, 2, 1, 0]], np.int8)
  chrom = np.array(['1', '1', '1', '2', '2'])
  valid = model.context_valid(chrom, 2)
  codes = model.context_codes(x, valid, 1, 5, pad=3)
  np.testing.assert_array_equal(codes[0], [[0, 3], [1, 0], [3, 3], [1, 3]])
  np.testing.assert_array_equal(model.context_codes(x, valid, 0, 2, 3)[0], [[3, 3], [0, 3]])
  # A block shorter than the context, at the cohort's start.
  valid4 = model.context_valid(chrom, 4)
  np.testing.assert_array_equal(model.context_codes(x, valid4, 0, 1, 3)[0], [[3, 3, 3, 3]])
  np.testing.assert_array_equal(model.context_codes(x, valid4, 2, 3, 3)[0], [[1, 0, 3, 3]])


def test_fit_recovers_a_markov_chain_and_sampling_reproduces_it():
  chrom = np.array(['1'] * 30)
  x = _markov(2000, 30, flip=0.1)
  y = np.zeros(len(x), np.int32)
  cfg = model.ARConfig(
    num_states=2, num_classes=1, context=2, per_class=False, l2_shared=1e-3, l2_class=1e-3
  )
  params, info = _params(cfg, x, y, chrom, block_snps=8, max_iter=200)
  # p(x_j = x_{j-1}) = 0.9 at every SNP but the first: the logit gap is log(0.9 / 0.1).
  gap = np.asarray(params['T'])[1:, 0, 0]  # lag 1, value 1, the one logit (state 1)
  np.testing.assert_allclose(np.median(gap), 2 * np.log(9), atol=0.4)
  assert info['blocks'] == 4
  ids = jnp.arange(4000)
  out = np.asarray(sampler.sample(params, jnp.zeros(4000, jnp.int32), ids, jax.random.key(0)))
  assert out.shape == (4000, 30) and out.dtype == np.int8
  assert _lag1_agreement(out, chrom) == pytest.approx(0.9, abs=0.01)
  assert out.mean() == pytest.approx(0.5, abs=0.02)


def test_contexts_do_not_cross_chromosomes():
  """One unbroken chain labelled as two chromosomes: the model must not link them."""
  chrom = np.array(['1'] * 10 + ['2'] * 10)
  x = _markov(2000, 20, flip=0.05)  # x_10 copies x_9 in the data
  y = np.zeros(len(x), np.int32)
  cfg = model.ARConfig(num_states=2, num_classes=1, context=3, per_class=False)
  params, _ = _params(cfg, x, y, chrom, block_snps=7, max_iter=100)
  assert (x[:, 10] == x[:, 9]).mean() > 0.9
  out = np.asarray(
    sampler.sample(params, jnp.zeros(3000, jnp.int32), jnp.arange(3000), jax.random.key(1))
  )
  assert _lag1_agreement(out, chrom) > 0.9
  across = (out[:, 10] == out[:, 9]).mean()  # no context across the boundary: agreement 1/2
  assert across == pytest.approx(0.5, abs=0.04)


def test_blocks_shorter_than_the_context_fit_like_one_block():
  chrom = np.array(['1'] * 12)
  x = _markov(300, 12, flip=0.2, seed=6)
  y = np.arange(300) % 2
  cfg = model.ARConfig(num_states=2, num_classes=2, context=5)
  whole, _ = fit.fit(cfg, x, y, chrom, block_snps=12, max_iter=300, tol=1e-9)
  parts, _ = fit.fit(cfg, x, y, chrom, block_snps=2, max_iter=300, tol=1e-9)
  for name in whole:
    np.testing.assert_allclose(parts[name], whole[name], atol=1e-2, err_msg=name)


@pytest.mark.parametrize('states', [2, 3])
def test_log_likelihood_is_the_log_softmax_of_the_observed_state(states):
  rng = np.random.default_rng(6)
  logits = rng.normal(size=(3, 5, states)).astype(np.float32)
  x = rng.integers(0, states, (5, 3))
  weight = np.array([1.0, 0.0, 2.0], np.float32)
  logp = np.asarray(jax.nn.log_softmax(logits))
  want = sum(weight[b] * logp[b, n, x[n, b]] for b in range(3) for n in range(5))
  got = model.log_likelihood(jnp.asarray(logits), jnp.asarray(x), jnp.asarray(weight))
  assert float(got) == pytest.approx(want, rel=1e-5)


def test_blocks_give_the_fit_of_the_whole():
  chrom = np.array(['1'] * 24)
  x = _markov(300, 24, flip=0.2, seed=3)
  y = np.arange(300) % 2
  cfg = model.ARConfig(num_states=2, num_classes=2, context=4)
  whole, _ = fit.fit(cfg, x, y, chrom, block_snps=24, max_iter=300, tol=1e-9)
  parts, _ = fit.fit(cfg, x, y, chrom, block_snps=5, max_iter=300, tol=1e-9)
  for name in whole:  # float32 L-BFGS, stopped by max_iter
    np.testing.assert_allclose(parts[name], whole[name], atol=1e-2, err_msg=name)


def test_class_specific_ld():
  """Class 0 copies the previous allele, class 1 flips it: each keeps its own LD."""
  chrom = np.array(['1'] * 12)
  copy, flip = _markov(1500, 12, 0.05, seed=1), _markov(1500, 12, 0.95, seed=2)
  x = np.concatenate([copy, flip])
  y = np.repeat([0, 1], 1500)
  cfg = model.ARConfig(num_states=2, num_classes=2, context=1, l2_class=1e-3)
  params, _ = _params(cfg, x, y, chrom)
  labels = jnp.asarray(np.repeat([0, 1], 2000))
  out = np.asarray(sampler.sample(params, labels, jnp.arange(4000), jax.random.key(2)))
  assert _lag1_agreement(out[:2000], chrom) == pytest.approx(0.95, abs=0.02)
  assert _lag1_agreement(out[2000:], chrom) == pytest.approx(0.05, abs=0.02)


def test_genotype_states_and_validation_likelihood():
  chrom = np.array(['1'] * 16)
  hap = _markov(1200, 16, 0.1, seed=4)
  hap[:, 1::2] = _markov(1200, 8, 0.1, seed=7)  # odd SNPs: a chain of their own (lag 2)
  dosage = (hap[:600] + hap[600:]).astype(np.int8)  # three states
  y = np.zeros(600, np.int32)
  cfg = model.ARConfig(num_states=3, num_classes=1, context=2)
  params, info = fit.fit(cfg, dosage[:500], y[:500], chrom, val=(dosage[500:], y[500:]))
  flat = model.ARConfig(num_states=3, num_classes=1, context=1)
  params1, info1 = fit.fit(flat, dosage[:500], y[:500], chrom, val=(dosage[500:], y[500:]))
  # Each SNP depends on the SNP two before it: two lags score val higher than one.
  assert info1['val_log_likelihood'] < info['val_log_likelihood'] < 0
  assert np.asarray(params1['T']).shape == (16, 2, 2)
  assert np.asarray(params['T']).shape == (16, 4, 2)  # F = 2 lags x 2 states, 2 logits
  # The same model scores its own val sequences as `fit` reported.
  ll = fit.log_likelihood(cfg, params, dosage[500:], y[500:], chrom)
  assert ll / 100 == pytest.approx(info['val_log_likelihood'], rel=1e-5)


def test_a_person_does_not_depend_on_the_batch_or_the_device_count():
  chrom = np.array(['1'] * 20)
  x = _markov(200, 20, 0.2)
  cfg = model.ARConfig(num_states=2, num_classes=2, context=3)
  params, _ = _params(cfg, x, np.arange(200) % 2, chrom, max_iter=20)
  labels, ids = sampler.haplotype_pairs(jnp.asarray([0, 1, 1, 0]), jnp.asarray([5, 6, 7, 8]))
  np.testing.assert_array_equal(labels, [0, 0, 1, 1, 1, 1, 0, 0])
  np.testing.assert_array_equal(ids, [10, 11, 12, 13, 14, 15, 16, 17])
  key = jax.random.key(3)
  full = np.asarray(sampler.sample(params, labels, ids, key))
  part = np.asarray(sampler.sample(params, labels[2:4], ids[2:4], key))
  np.testing.assert_array_equal(full[2:4], part)
  mesh = distributed.make_mesh(jax.devices()[:2])
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data'))
  sharded = sampler.sample(
    params, jax.device_put(labels, sharding), jax.device_put(ids, sharding), key
  )
  np.testing.assert_array_equal(np.asarray(sharded), full)


def test_fit_is_the_same_on_one_and_two_devices():
  chrom = np.array(['1'] * 40)
  x = _markov(120, 40, 0.2, seed=5)
  y = np.arange(120) % 3
  cfg = model.ARConfig(num_states=2, num_classes=3, context=4)
  one, _ = fit.fit(
    cfg, x, y, chrom, block_snps=8, max_iter=30, mesh=distributed.make_mesh(jax.devices()[:1])
  )
  two, _ = fit.fit(
    cfg, x, y, chrom, block_snps=8, max_iter=30, mesh=distributed.make_mesh(jax.devices()[:2])
  )
  for name in one:
    np.testing.assert_allclose(one[name], two[name], atol=1e-5, err_msg=name)


def test_lbfgs_evaluates_the_objective_about_once_per_iteration(monkeypatch):
  """The solver runs unbatched on each device's block: under vmap, optax's line-search
  conds became selects that evaluated the objective 3 times per iteration."""
  calls = []
  counted = model.log_likelihood

  def log_likelihood(*args):
    jax.debug.callback(lambda: calls.append(1))
    return counted(*args)

  monkeypatch.setattr(model, 'log_likelihood', log_likelihood)
  chrom = np.array(['1'] * 13)  # shapes of their own: no cached compile skips the count
  x = _markov(77, 13, 0.2, seed=8)
  cfg = model.ARConfig(num_states=2, num_classes=2, context=3)
  mesh = distributed.make_mesh(jax.devices()[:1])
  _, info = fit.fit(
    cfg, x, np.arange(77) % 2, chrom, block_snps=13, max_iter=25, tol=0.0, mesh=mesh
  )
  assert info['iterations_max'] == 25
  assert 25 <= len(calls) <= 35
