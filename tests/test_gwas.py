"""Tests for gdiff.evaluate.gwas: plink2 GWAS concordance on a planted case/control signal."""

import numpy as np
import pytest

from gdiff.evaluate import gwas

needs_plink = pytest.mark.skipif(
  gwas.skip_reason(('control', 'case')) is not None, reason='plink2 not on PATH'
)


def _case_control(n=400, s=120, causal=(5, 40, 80), seed=0):
  """Dosages with 3 causal SNPs of large effect; label 1 = case (liability threshold)."""
  rng = np.random.default_rng(seed)
  af = rng.uniform(0.1, 0.5, s)
  dosage = rng.binomial(2, af, (n, s)).astype(np.int8)
  liability = dosage[:, list(causal)].sum(1) * 1.5 + rng.normal(0, 1, n)
  labels = (liability > np.median(liability)).astype(np.int32)
  chrom = np.repeat(['1', '2'], s // 2)
  return dosage, labels, chrom, np.tile(np.arange(1, s // 2 + 1) * 1000, 2)


@needs_plink
def test_a_copy_agrees_and_a_shuffled_cohort_does_not():
  dosage, labels, chrom, pos = _case_control()
  classes = ('a', 'b')
  real = gwas.run_glm(dosage, labels, classes, chrom, pos)
  assert np.all(real.p_S[[5, 40, 80]] < 1e-6), real.p_S[[5, 40, 80]]
  assert len(gwas.hits(real)) == gwas.MIN_HITS  # few SNPs reach 1e-3: the top 50
  same = gwas.concordance(real, gwas.run_glm(dosage.copy(), labels, classes, chrom, pos))
  assert same['direction_agreement'] == 1.0 and same['spearman_log10p'] == pytest.approx(1.0)
  assert same['lambda_gc'] == pytest.approx(same['lambda_gc_real_train'])
  # Each SNP shuffled across people on its own: no association left with the label.
  rng = np.random.default_rng(1)
  shuffled = np.stack([rng.permutation(col) for col in dosage.T], axis=1)
  other = gwas.concordance(real, gwas.run_glm(shuffled, labels, classes, chrom, pos))
  assert other['direction_agreement'] < 0.75, other
  assert other['spearman_log10p'] < 0.5, other


@needs_plink
def test_flipped_labels_give_opposite_directions():
  dosage, labels, chrom, pos = _case_control()
  real = gwas.run_glm(dosage, labels, ('a', 'b'), chrom, pos)
  flipped = gwas.run_glm(dosage, 1 - labels, ('a', 'b'), chrom, pos)
  assert gwas.concordance(real, flipped)['direction_agreement'] == 0.0


def test_case_codes_and_skips():
  # Named case/control: the class named 'case' is plink's 2, whatever its label id.
  codes = gwas.case_codes(np.array([0, 1, 0]), ('case', 'control'))
  np.testing.assert_array_equal(codes, ['2', '1', '2'])
  np.testing.assert_array_equal(gwas.case_codes(np.array([0, 1]), ('x', 'y')), ['1', '2'])
  assert 'case/control' in gwas.skip_reason(('a', 'b', 'c'))
  assert 'not on PATH' in gwas.skip_reason(('a', 'b'), plink='no-such-plink2-binary')
