"""Differential privacy of the ar fit (gdiff.ar.dp): clipping, noise and the accountant by known
answers, and a tiny DP run through the pipeline that records its epsilon."""

import gzip
import json
import math
import os

import dp_accounting
import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from dp_accounting import pld, rdp

from configs import kg1
from gdiff import distributed, pipeline
from gdiff.ar import dp, model
from gdiff.errors import InputError

CFG = model.ARConfig(num_states=2, num_classes=2, context=2)


def _people(n, s, seed=0):
  rng = np.random.default_rng(seed)
  return (rng.random((n, 2, s)) < 0.4).astype(np.int8), rng.integers(0, 2, n).astype(np.int32)


def _random_params(s, seed=1):
  rng = np.random.default_rng(seed)
  return {
    k: jnp.asarray(rng.normal(size=v.shape).astype(np.float32))
    for k, v in dp.init_params(CFG, s).items()
  }


def _grad(params, x, y, valid):
  g = jax.grad(lambda p: -dp.person_log_likelihood(CFG, p, x, y, valid))(params)
  return g, float(jnp.sqrt(sum(jnp.sum(v**2) for v in jax.tree.leaves(g))))


def test_person_log_likelihood_is_the_models():
  x, y = _people(3, 7)
  params = _random_params(7)
  valid = model.context_valid(np.array([1, 1, 1, 1, 2, 2, 2]), CFG.context)
  ours = sum(float(dp.person_log_likelihood(CFG, params, x[i], y[i], valid)) for i in range(3))
  # gdiff.ar.model's own block computation over the 6 sequences sorted by class.
  seq, cls = x.reshape(6, 7), np.repeat(y, 2)
  order = np.argsort(cls, kind='stable')
  codes = model.context_codes(seq[order], valid, 0, 7, CFG.pad)
  counts = np.bincount(cls, minlength=2)
  rows = ((0, int(counts[0])), (int(counts[0]), 6))
  logits = model.block_logits(params, model.indicators(CFG, jnp.asarray(codes)), rows)
  theirs = model.log_likelihood(logits, jnp.asarray(seq[order]), jnp.ones(7))
  np.testing.assert_allclose(ours, float(theirs), rtol=1e-5)


def test_a_person_above_the_clip_norm_contributes_exactly_c_g_over_norm_g():
  s = 6
  x, y = _people(4, s)
  params = _random_params(s)
  valid = jnp.asarray(model.context_valid(np.ones(s), CFG.context))
  grads, norms = zip(*(_grad(params, x[i], y[i], valid) for i in range(4)))
  clip = float(np.median(norms))  # two people above, two below
  assert sum(n > clip for n in norms) == 2
  weight = np.array([1, 1, 1, 1, 0, 0], np.float32)  # two padding people (weight 0)
  xp = np.concatenate([x, x[:2]])
  yp = np.concatenate([y, y[:2]])
  summed, clipped, _, real = dp.clipped_sum(params, xp, yp, weight, valid, clip, cfg=CFG)
  assert int(clipped) == 2 and int(real) == 4
  for name in params:
    expected = sum(g[name] * min(1.0, clip / n) for g, n in zip(grads, norms))
    np.testing.assert_allclose(summed[name], expected, rtol=1e-4, atol=1e-5)
  # One person far above C alone: exactly C * g / |g| (norm C).
  one, _, _, _ = dp.clipped_sum(params, x[:1], y[:1], np.ones(1, np.float32), valid, 0.5, cfg=CFG)
  for name in params:
    np.testing.assert_allclose(one[name], 0.5 * grads[0][name] / norms[0], rtol=1e-4, atol=1e-6)


def test_the_noise_is_sigma_c_normal_from_the_key():
  zeros = {'a': jnp.zeros((3, 4)), 'b': jnp.zeros(5)}
  key = jax.random.key(7)
  out = dp.noisy_gradient(zeros, key, 1.5, 2.0, 4.0)
  ka, kb = jax.random.split(key, 2)  # tree-flatten order: 'a', 'b'
  np.testing.assert_allclose(out['a'], 1.5 * 2.0 * jax.random.normal(ka, (3, 4)) / 4.0, rtol=1e-6)
  np.testing.assert_allclose(out['b'], 1.5 * 2.0 * jax.random.normal(kb, (5,)) / 4.0, rtol=1e-6)
  # Statistically, on a large leaf: mean 0, std sigma * C (4 standard errors).
  big = dp.noisy_gradient({'g': jnp.ones(200_000)}, key, 0.8, 3.0, 1.0)['g'] - 1.0
  se = 2.4 / math.sqrt(200_000)
  assert abs(float(big.mean())) < 4 * se
  assert abs(float(big.std()) - 2.4) < 4 * 2.4 / math.sqrt(2 * 200_000)


def test_epsilon_is_dp_accountings_own():
  q, sigma, steps, delta = 0.05, 1.1, 300, 1e-5
  event = dp_accounting.SelfComposedDpEvent(
    dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps
  )
  for name, make in (('pld', pld.PLDAccountant), ('rdp', rdp.RdpAccountant)):
    acc = make()
    acc.compose(event)
    assert dp.epsilon(q, sigma, steps, delta, name) == pytest.approx(acc.get_epsilon(delta), 1e-9)
  assert dp.epsilon(q, 0.0, steps, delta) == math.inf


def test_calibrated_noise_meets_the_target_epsilon():
  q, steps, delta = 0.1, 200, 1e-5
  sigma = dp.calibrate(q, steps, 2.0, delta, 'rdp')
  assert dp.epsilon(q, sigma, steps, delta, 'rdp') <= 2.0
  assert dp.epsilon(q, 0.97 * sigma, steps, delta, 'rdp') > 2.0  # and not much more noise
  sigma = dp.calibrate(q, steps, 2.0, delta)  # PLD: searched coarse, reported fine
  assert 1.9 < dp.epsilon(q, sigma, steps, delta) <= 2.0


def _config(**dp_overrides):
  c = kg1.get_config()
  s = c.data.simulate
  s.samples_per_population = (12, 12, 12, 12)
  s.num_contigs = 2
  s.contig_length = 200_000
  s.max_snps_per_contig = 30
  c.ar.context_snps = (1, 4)
  c.ar.dp.update(
    enabled=True, noise_multiplier=1.0, steps=8, batch_people=10, context_snps=3, microbatch=4
  )
  c.ar.dp.update(dp_overrides)
  return c


def test_a_tiny_dp_run_writes_a_valid_cohort_and_records_epsilon(tmp_path):
  w = str(tmp_path / 'w')
  c = _config()
  for mode in ('prepare', 'train', 'sample'):
    pipeline.run(c, w, mode)
  with open(os.path.join(w, 'stages', 'train.json')) as f:
    record = json.load(f)['dp']
  n = 40  # train: 80 % of 48 people
  q, delta = 10 / n, 1 / (10 * n)
  assert record['delta'] == pytest.approx(delta)
  assert record['sampling'] == 'poisson' and record['steps'] == 8
  assert record['epsilon'] == pytest.approx(dp.epsilon(q, 1.0, 8, delta), abs=1e-4)
  with open(os.path.join(w, 'checkpoints', 'ar', 'fit.json')) as f:
    fit = json.load(f)
  assert fit['context_snps'] == 3 and len(fit['candidates']) == 1 and fit['dp'] == record
  with open(os.path.join(w, 'samples', 'manifest.json')) as f:
    assert json.load(f)['dp'] == record
  with gzip.open(os.path.join(w, 'samples', 'synthetic.vcf.gz'), 'rt') as f:
    header = [line.strip() for line in f if line.startswith('##gdiffDP')]
  assert header == [
    f'##gdiffDPEpsilon={record["epsilon"]},delta={record["delta"]},noise_multiplier=1.0,'
    'steps=8,sampling=poisson,unit=person'
  ]
  with h5py.File(os.path.join(w, 'samples', 'synthetic.h5')) as f:
    dosage, hap0 = f['dosage'][()], f['hap0'][()]
  assert dosage.shape == (40, 60) and set(np.unique(dosage)) <= {0, 1, 2}
  assert set(np.unique(dosage - hap0)) <= {0, 1}


def test_the_dp_fit_learns_ld_without_noise():
  # Haplotypes that copy the previous SNP with probability 0.9: the lag-1 table turns positive.
  rng = np.random.default_rng(0)
  n, s = 60, 12
  x = np.zeros((n, 2, s), np.int8)
  x[..., 0] = rng.random((n, 2)) < 0.5
  for j in range(1, s):
    x[..., j] = np.where(rng.random((n, 2)) < 0.1, 1 - x[..., j - 1], x[..., j - 1])
  settings = dp.DPConfig(
    noise_multiplier=0.0,
    clip_norm=5.0,
    sampling_rate=0.5,
    steps=60,
    delta=1e-3,
    learning_rate=0.2,
    microbatch=8,
  )
  params, info = dp.fit(
    CFG,
    settings,
    x,
    np.zeros(n, np.int32),
    np.ones(s),
    key=jax.random.key(0),
    seed=0,
    mesh=distributed.make_mesh(),
  )
  assert info['dp']['epsilon'] == math.inf and 0 < info['mean_batch_people'] < n
  assert np.all(params['T'][1:, 0, 0] > 1.0)  # lag 1: "x_{j-1} = 1" raises p(x_j = 1)


@pytest.mark.parametrize(
  'key,value,message',
  [
    ('accountant', 'gdp', 'ar.dp.accountant'),
    ('target_epsilon', 0.0, 'ar.dp.target_epsilon'),
    ('noise_multiplier', -1.0, 'ar.dp.noise_multiplier'),
    ('delta', 1.0, 'ar.dp.delta'),
    ('clip_norm', 0.0, 'ar.dp.clip_norm'),
    ('steps', 0, 'ar.dp.steps'),
  ],
)
def test_bad_dp_settings_name_the_option(key, value, message):
  c = _config(noise_multiplier=0.0)
  c.ar.dp[key] = value
  with pytest.raises(InputError, match=message):
    pipeline.check_config(c, 'train')


def test_dp_refuses_an_ancestry_code():
  c = _config(noise_multiplier=0.0)
  c.ar.ancestry_pcs = 2
  with pytest.raises(InputError, match='ar.ancestry_pcs=2: must be 0 with ar.dp.enabled'):
    pipeline.check_config(c, 'train')
  c.ar.ancestry_pcs = 0
  c.ar.segments = 'chromosome'
  with pytest.raises(InputError, match="ar.segments='chromosome': must be 'genome'"):
    pipeline.check_config(c, 'train')
