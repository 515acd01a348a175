"""The ancestry code of the ar generator (gdiff.ar.ancestry): PCs, the per-class Gaussian, and
what it is for: an admixed person's ancestry fraction holds along the whole genome."""

import jax.numpy as jnp
import numpy as np

from gdiff import rng
from gdiff.ar import ancestry, fit, model, sampler


def _admixed(n_pure, n_admixed, s, seed=0):
  """Genotypes of two populations (allele frequencies 0.15 / 0.85 at every SNP, independent
  SNPs) and of admixed people whose SNPs come from population A with probability q ~ U(0, 1)."""
  r = np.random.default_rng(seed)
  q = np.concatenate([np.ones(n_pure), np.zeros(n_pure), r.random(n_admixed)])
  freq = np.where(r.random((len(q), s)) < q[:, None], 0.15, 0.85)
  dosage = (r.random((len(q), s)) < freq).astype(np.int8) + (r.random((len(q), s)) < freq)
  label = np.repeat([0, 1, 2], [n_pure, n_pure, n_admixed]).astype(np.int32)
  return dosage.astype(np.int8), label, q


def test_projection_matches_the_exact_pca():
  dosage, _, _ = _admixed(40, 40, 300, seed=1)
  proj = ancestry.fit_projection(dosage, 3)
  z = proj(dosage)
  x = (dosage - dosage.mean(0)) / np.where(dosage.std(0) > 0, dosage.std(0), np.inf)
  u, sing, _ = np.linalg.svd(x, full_matrices=False)
  exact = u[:, :3] * np.sqrt(len(x) - 1)  # unit-variance scores
  assert abs(abs(np.corrcoef(z[:, 0], exact[:, 0])[0, 1]) - 1) < 1e-4  # the structure
  # PCs 2-3 are noise of near-equal variance: the randomised SVD need only find as much of it.
  directions = proj.loadings_SxP / np.linalg.norm(proj.loadings_SxP, axis=0)
  captured = np.linalg.norm(x @ directions) ** 2
  assert captured > 0.99 * np.sum(sing[:3] ** 2)
  np.testing.assert_allclose(z.std(0, ddof=1), 1.0, atol=1e-2)


def test_draws_follow_each_class_gaussian_and_depend_on_the_row_alone():
  r = np.random.default_rng(0)
  z = np.concatenate([r.normal([3, 0], [1, 0.5], (500, 2)), r.normal([-3, 1], 0.2, (500, 2))])
  label = np.repeat([0, 1], 500)
  density = ancestry.class_density(z, label, 2)
  key = rng.sample_substream(rng.stream(0, 'sample', 0), 'ancestry')
  labels = jnp.asarray(np.repeat([0, 1], 4000))
  rows = jnp.arange(8000)
  drawn = np.asarray(ancestry.draw(density, labels, rows, key))
  np.testing.assert_allclose(density['mean'][0], z[:500].mean(0), atol=1e-6)
  np.testing.assert_allclose(drawn[:4000].mean(0), z[:500].mean(0), atol=0.06)  # 4 se
  np.testing.assert_allclose(drawn[:4000].std(0), z[:500].std(0), rtol=0.05)
  np.testing.assert_allclose(drawn[4000:].mean(0), z[500:].mean(0), atol=0.02)
  np.testing.assert_allclose(np.cov(drawn[:4000].T), np.cov(z[:500].T), atol=0.06)
  # Person 7 of class 0 is the same whatever else is drawn with it.
  alone = ancestry.draw(density, labels[7:8], rows[7:8], key)
  np.testing.assert_allclose(np.asarray(alone)[0], drawn[7], rtol=1e-6)


def _fit_and_draw(dosage, label, chrom, pcs, n_draw):
  """Fits the genotype-unit model with `pcs` ancestry PCs and draws n_draw admixed people."""
  z = None
  if pcs:
    proj = ancestry.fit_projection(dosage, pcs)
    z = proj(dosage)
  cfg = model.ARConfig(num_states=3, num_classes=3, context=2, ancestry=pcs)
  params, _ = fit.fit(cfg, dosage, label, chrom, block_snps=64, max_iter=100, z_NxP=z)
  params = {k: jnp.asarray(v) for k, v in params.items()}
  params['valid'] = jnp.asarray(model.context_valid(chrom, cfg.context))
  labels = jnp.full((n_draw,), 2, jnp.int32)
  rows = jnp.arange(n_draw, dtype=jnp.int32)
  key = rng.stream(0, 'sample', 0)
  z_draw = None
  if pcs:
    density = ancestry.class_density(z, label, 3)
    z_draw = ancestry.draw(density, labels, rows, rng.sample_substream(key, 'ancestry'))
  return np.asarray(sampler.sample(params, labels, rows, key, z_BxP=z_draw))


def test_the_code_keeps_each_admixed_persons_ancestry_fraction_along_the_genome():
  dosage, label, q = _admixed(100, 200, 192, seed=2)
  chrom = np.repeat(['1', '2', '3'], 64)
  admixed = label == 2
  # A person's ancestry fraction shows as its mean dosage (population A: low, B: high).
  real_sd = dosage[admixed].mean(1).std()
  without = _fit_and_draw(dosage, label, chrom, 0, 400).mean(1).std()
  with_code = _fit_and_draw(dosage, label, chrom, 2, 400).mean(1).std()
  assert real_sd > 0.3  # q ~ U(0, 1) spreads the admixed people
  assert without < 0.4 * real_sd  # k SNPs of context cannot carry the fraction
  assert 0.75 * real_sd < with_code < 1.25 * real_sd


def test_val_log_likelihood_takes_the_val_codes():
  dosage, label, _ = _admixed(60, 60, 64, seed=3)
  chrom = np.repeat(['1'], 64)
  z = ancestry.fit_projection(dosage, 2)(dosage)
  cfg = model.ARConfig(num_states=3, num_classes=3, context=1, ancestry=2)
  params, info = fit.fit(
    cfg,
    dosage[:150],
    label[:150],
    chrom,
    max_iter=50,
    z_NxP=z[:150],
    val=(dosage[150:], label[150:], z[150:]),
  )
  ll = fit.log_likelihood(cfg, params, dosage[150:], label[150:], chrom, z_NxP=z[150:])
  np.testing.assert_allclose(info['val_log_likelihood'], ll / 30, rtol=1e-5)
  shuffled = fit.log_likelihood(cfg, params, dosage[150:], label[150:], chrom, z_NxP=z[150:][::-1])
  assert shuffled < ll  # the codes are used
