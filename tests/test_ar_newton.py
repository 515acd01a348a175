"""Newton's method for the ar fit (gdiff.ar.newton): it reaches the penalised optimum."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gdiff.ar import fit, model, newton


def _chains(n, s, flip, seed, states):
  """Markov chains of 0/1 (two summed for three states), with a repeated SNP (perfect LD)."""
  rng = np.random.default_rng(seed)
  out = np.zeros((n, s), np.int8)
  for _ in range(states - 1):
    x = np.zeros((n, s), np.int8)
    x[:, 0] = rng.random(n) < 0.4
    for j in range(1, s):
      keep = rng.random(n) >= flip
      x[:, j] = np.where(keep, x[:, j - 1], 1 - x[:, j - 1])
    out += x
  out[:, 3] = out[:, 2]  # SNPs 2 and 3 carry the same indicators in every later context
  return out


def _objective(cfg, params, x, y, chrom, z):
  """The model's own objective (penalty minus log-likelihood), in its own parameters."""
  order, rows = fit.class_order(y, cfg.num_classes)
  valid = model.context_valid(chrom, cfg.context)
  codes = model.context_codes(x[order], valid, 0, x.shape[1], cfg.pad)
  feats = model.indicators(cfg, jnp.asarray(codes))
  target = jnp.asarray(x[order], jnp.int32)
  zs = jnp.asarray(z[order])

  def f(p):
    logits = model.block_logits(p, feats, rows, zs)
    return model.penalty(cfg, p) - model.log_likelihood(logits, target, jnp.ones(x.shape[1]))

  return f


@pytest.mark.parametrize(
  'states,per_class,ancestry', [(2, True, 0), (3, True, 0), (2, False, 2), (3, True, 2)]
)
def test_newton_reaches_the_penalised_optimum(states, per_class, ancestry):
  chrom = np.array(['1'] * 10 + ['2'] * 8)
  x = _chains(600, 18, 0.2, 1, states)
  y = np.random.default_rng(2).integers(0, 3, len(x))
  z = np.random.default_rng(3).normal(size=(len(x), ancestry)).astype(np.float32)
  cfg = model.ARConfig(
    num_states=states, num_classes=3, context=4, per_class=per_class, ancestry=ancestry
  )
  kw = dict(block_snps=6, z_NxP=z if ancestry else None)
  params, info = fit.fit(cfg, x, y, chrom, max_iter=30, tol=1e-7, solver='newton', **kw)
  assert info['iterations_max'] < 30
  f = _objective(cfg, params, x, y, chrom, z)
  p = {k: jnp.asarray(v) for k, v in params.items()}
  # Stationary in the model's own parameters: every partial derivative of the summed
  # objective is ~0 (against sums over 600 sequences of terms of order 1).
  grads = jax.grad(f)(p)
  for name, g in grads.items():
    assert float(jnp.max(jnp.abs(g))) < 0.05, name
  # ... and no worse than 300 L-BFGS iterations from the same start.
  lbfgs, _ = fit.fit(cfg, x, y, chrom, max_iter=300, tol=1e-9, solver='lbfgs', **kw)
  assert float(f(p)) <= float(f({k: jnp.asarray(v) for k, v in lbfgs.items()})) + 1e-2


def test_unpack_keeps_the_logits_and_picks_the_cheapest_split():
  rng = np.random.default_rng(0)
  b, k, feats = 3, 4, 5
  params = {
    'c': rng.normal(size=(b, 1)),
    'e': rng.normal(size=(b, k, 1)),
    'T': rng.normal(size=(b, feats, 1)),
    'D': rng.normal(size=(b, k, feats, 1)),
    'A': rng.normal(size=(b, 2, 1)),
  }
  params = {name: jnp.asarray(v, jnp.float32) for name, v in params.items()}
  theta, sigma = newton.pack(params)
  back = newton.unpack(theta, sigma, params, 0.01, 0.1)
  # Same class totals (so the same logits) ...
  np.testing.assert_allclose(back['c'][:, None] + back['e'], params['c'][:, None] + params['e'])
  np.testing.assert_allclose(
    back['T'][:, None] + back['D'], params['T'][:, None] + params['D'], atol=1e-6
  )
  np.testing.assert_array_equal(back['A'], params['A'])
  # ... at the smallest penalty; and a split that is already the cheapest comes back as is.
  cfg = model.ARConfig(num_states=2, num_classes=k, context=feats, ancestry=2)
  assert float(model.penalty(cfg, back)) < float(model.penalty(cfg, params))
  again = newton.unpack(*newton.pack(back), back, 0.01, 0.1)
  for name in back:
    np.testing.assert_allclose(again[name], back[name], atol=1e-6, err_msg=name)


def test_penalty_matrices_are_the_penalty_of_the_cheapest_split():
  rng = np.random.default_rng(1)
  k, l2s, l2c = 3, 0.01, 0.1
  totals = rng.normal(size=k)  # one indicator column's class totals
  q = np.asarray(newton.penalty_matrices(k, 2, l2s, l2c))
  t = l2c * totals.sum() / (l2s + k * l2c)  # the cheapest shared part
  assert totals @ q[1] @ totals == pytest.approx(l2s * t**2 + l2c * np.sum((totals - t) ** 2))
  intercepts = rng.normal(size=k)  # c free, e at l2_shared
  c = intercepts.mean()
  assert intercepts @ q[0] @ intercepts == pytest.approx(l2s * np.sum((intercepts - c) ** 2))


def test_a_shorter_contexts_fit_starts_the_longer_one_at_the_same_optimum():
  chrom = np.array(['1'] * 16)
  x = _chains(500, 16, 0.2, 4, 2)
  y = np.arange(500) % 2
  short = model.ARConfig(num_states=2, num_classes=2, context=2)
  long = model.ARConfig(num_states=2, num_classes=2, context=5)
  kw = dict(block_snps=8, max_iter=30, tol=1e-7, solver='newton')
  start, _ = fit.fit(short, x, y, chrom, **kw)
  cold, cold_info = fit.fit(long, x, y, chrom, **kw)
  warm, warm_info = fit.fit(long, x, y, chrom, init=start, **kw)
  assert warm_info['iterations_mean'] < cold_info['iterations_mean']
  for name in cold:
    np.testing.assert_allclose(warm[name], cold[name], atol=2e-3, err_msg=name)
