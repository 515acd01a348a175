"""gdiff.evaluate.genome: the genome-wide checks on cohorts with known answers."""

import numpy as np
import pytest

from gdiff.evaluate import genome

S_PER_CHROM, CHROMS = 150, 3


def _chrom():
  return np.repeat(np.arange(1, CHROMS + 1), S_PER_CHROM)


def _draw(rng, p_NxS):
  return rng.binomial(2, p_NxS).astype(np.int8)


def _admixed(rng, n, p_a, p_b, shared: bool):
  """One admixed class: ancestry fraction q per person (genome-wide) or per chromosome."""
  q = rng.uniform(0, 1, (n, 1 if shared else CHROMS))
  q_NxS = np.repeat(q, S_PER_CHROM, axis=1) if not shared else np.broadcast_to(q, (n, len(p_a)))
  return _draw(rng, q_NxS * p_a + (1 - q_NxS) * p_b)


def test_structure_shows_across_classes_not_within_and_pc1_needs_a_shared_ancestry():
  rng = np.random.default_rng(0)
  s = CHROMS * S_PER_CHROM
  p_a, p_b = rng.uniform(0.05, 0.95, s), rng.uniform(0.05, 0.95, s)
  n = 200

  # class 0 and 1: two unadmixed populations; class 2: admixed between them
  def cohort(shared):
    x = np.concatenate(
      [
        _draw(rng, np.broadcast_to(p_a, (n, s))),
        _draw(rng, np.broadcast_to(p_b, (n, s))),
        _admixed(rng, n, p_a, p_b, shared),
      ]
    )
    return x, np.repeat(np.arange(3), n).astype(np.int32)

  train_x, train_y = cohort(shared=True)
  ref = genome.reference(train_x, train_y, _chrom(), np.random.default_rng(1), num_pairs=2000)
  real = genome.checks(ref, *cohort(shared=True))
  independent = genome.checks(ref, *cohort(shared=False))
  # Structure across classes: SNP pairs on different chromosomes correlate overall ...
  assert real['r2_excess'] > 0.02 and abs(real['r_mean']) < 0.05
  # ... and within the unadmixed classes they do not (the admixed one adds a little).
  assert real['r2_excess_within'] < real['r2_excess'] / 2
  # PC1 per chromosome tracks the genome-wide ancestry fraction only if it is shared.
  assert real['pc1_agreement'] > 0.3
  assert independent['pc1_agreement'] < real['pc1_agreement'] - 0.15
  assert genome.checks(ref, train_x, train_y)['pc1_agreement'] > 0.3


def test_one_chromosome_gives_no_values_and_the_report_says_why():
  rng = np.random.default_rng(0)
  x = rng.integers(0, 3, (40, 60)).astype(np.int8)
  y = np.repeat([0, 1], 20).astype(np.int32)
  ref = genome.reference(x, y, np.ones(60, int), rng)
  assert ref is None and genome.checks(ref, x, y) is None
  metrics = {'methods': {'gdiff': {'realism': {'af_r': 0.9}}}, 'reference': {}}
  assert genome.table(metrics) == genome.NOTE_ONE_CHROMOSOME
  assert genome.markdown(metrics)[0] == genome.NOTE_ONE_CHROMOSOME


def test_same_pairs_for_every_cohort_and_pairs_cross_chromosomes():
  rng = np.random.default_rng(0)
  x = rng.integers(0, 3, (30, CHROMS * S_PER_CHROM)).astype(np.int8)
  y = np.zeros(30, np.int32)
  a = genome.reference(x, y, _chrom(), np.random.default_rng(5), num_pairs=500)
  b = genome.reference(x, y, _chrom(), np.random.default_rng(5), num_pairs=500)
  np.testing.assert_array_equal(a.pair_i, b.pair_i)
  assert len(a.pair_i) == 500 and np.all(_chrom()[a.pair_i] != _chrom()[a.pair_j])
  # Independent uniform genotypes: r² excess is at the noise floor.
  assert abs(genome.checks(a, x, y)['r2_excess']) < 0.01


def test_pc1_loading_is_the_top_eigenvector_on_either_side():
  rng = np.random.default_rng(3)
  for n, s in ((40, 90), (90, 40)):  # fewer people than SNPs, and more
    x = rng.binomial(2, rng.uniform(0.1, 0.9, s), (n, s)).astype(np.float64)
    x[: n // 2] += rng.binomial(1, 0.5, (n // 2, s))  # structure: a clear PC1
    xc = x - x.mean(0)
    _, v = np.linalg.eigh(xc.T @ xc)  # every eigenvector, SNPs x SNPs
    got = genome._pc1_loading(xc)
    np.testing.assert_allclose(np.abs(got @ v[:, -1]), 1.0, atol=1e-10)
    assert abs(np.linalg.norm(got) - 1) < 1e-12


def test_pair_r_is_pearson_r_and_nan_for_a_constant_snp():
  rng = np.random.default_rng(4)
  x = rng.integers(0, 3, (50, 30)).astype(np.int8)
  x[:, 7] = 1  # constant
  i, j = rng.integers(0, 30, 1100), rng.integers(0, 30, 1100)  # more pairs than one block
  got = genome._pair_r(x, i, j)
  for p in range(0, 1100, 37):
    if 7 in (i[p], j[p]):
      assert np.isnan(got[p])
    elif i[p] != j[p]:
      assert got[p] == pytest.approx(np.corrcoef(x[:, i[p]], x[:, j[p]])[0, 1], abs=1e-12)
