"""Tests for gdiff.evaluate.genetics (known answers on hand-made cohorts)."""

import evaluate_testdata as td
import numpy as np
import pytest

from gdiff.evaluate import baselines, genetics


def test_frequencies_are_exact_on_a_hand_made_cohort():
  # SNP 0: genotypes 0,0,1,2 -> AF 3/8; SNP 1: all 2 -> AF 1; SNP 2: 1,1,1,0 -> AF 3/8.
  dosage = np.array([[0, 2, 1], [0, 2, 1], [1, 2, 1], [2, 2, 0]], np.int8)
  m = genetics.moments(dosage, max_lag=2, block_size=8)
  np.testing.assert_allclose(genetics.allele_frequencies(m), [3 / 8, 1.0, 3 / 8])
  np.testing.assert_allclose(
    genetics.genotype_frequencies(m), [[0.5, 0, 0.25], [0.25, 0, 0.75], [0.25, 1, 0]]
  )
  np.testing.assert_allclose(genetics.heterozygosity(dosage), [1 / 3, 1 / 3, 2 / 3, 0])


def test_blocked_moments_equal_direct_sums():
  dosage, _ = td.ld_cohort(53, 40, seed=0)
  m = genetics.moments(dosage, max_lag=5, block_size=16)  # 4 blocks, last one padded
  x = dosage.astype(float)
  assert m['n'] == 53
  np.testing.assert_allclose(m['sum_S'], x.sum(0))
  np.testing.assert_allclose(m['lagged_KxS'][2, :37], (x[:, :37] * x[:, 3:]).sum(0))


def test_ld_r2_matches_corrcoef_and_respects_chromosomes():
  dosage, _ = td.ld_cohort(200, 30, seed=0)
  chrom = np.array(['1'] * 15 + ['2'] * 15)
  r2, defined = genetics.ld_r2(genetics.moments(dosage, 4), chrom)
  c = np.corrcoef(dosage.T.astype(float))
  assert r2[0, 3] == pytest.approx(c[3, 4] ** 2, abs=1e-6)
  assert r2[3, 20] == pytest.approx(c[20, 24] ** 2, abs=1e-6)
  assert not defined[0, 14] and not defined[3, 12]  # pairs across the chromosome boundary
  assert defined[0, 15]


def _reference(train, test, chrom, labels=None):
  return genetics.real_reference(
    train,
    test,
    chrom,
    max_lag=20,
    num_pcs=4,
    block_size=64,
    train_labels_N=labels,
    num_classes=2 if labels is not None else 0,
  )


def test_independent_snps_have_no_ld_but_real_and_mosaic_do():
  dosage, labels = td.ld_cohort(400, 200, seed=0)
  chrom = np.repeat(['1', '2'], 100)
  train, test = dosage[:300], dosage[300:]
  ref = _reference(train, test, chrom, labels[:300])
  real_train = baselines.RealTrain(train, labels[:300], chrom)
  counts = np.bincount(labels[:300])
  indep = baselines.generate('independent', real_train, counts, seed=0)[0]
  mosaic = baselines.generate('mosaic', real_train, counts, seed=0)[0]
  m_test, curves_test = genetics.compare(ref, test, chrom, 20, 64)
  m_ind, curves_ind = genetics.compare(ref, indep, chrom, 20, 64)
  m_mos, _ = genetics.compare(ref, mosaic, chrom, 20, 64)
  assert curves_test['ld_decay'][0] > 0.5  # the real data has LD ...
  assert m_test['ld_r2_corr'] > 0.9
  assert abs(m_ind['ld_r2_corr']) < 0.3  # ... the independent sampler keeps none
  assert curves_ind['ld_decay'][0] < 0.05
  assert m_ind['af_r'] > 0.98  # but its allele frequencies are right
  assert m_mos['ld_r2_corr'] > 0.95


def test_allele_frequency_r_is_one_for_the_same_cohort():
  dosage, labels = td.ld_cohort(120, 60, seed=0)
  chrom = np.ones(60, int)
  ref = _reference(dosage, dosage[:40], chrom, labels)
  m, _ = genetics.compare(ref, dosage, chrom, 20, 64, label_ids_N=labels)
  assert m['af_r'] == pytest.approx(1.0)
  assert m['af_mae'] == 0 and m['genotype_freq_mae'] == 0
  assert m['ld_r2_corr'] == pytest.approx(1.0)
  assert m['fst_mae'] == pytest.approx(0.0)
  assert m['fst_mean'] > 0.05  # the two classes differ in frequency


def test_hudson_fst_known_values():
  p = np.array([[0.5, 0.5], [0.5, 0.5]])
  # Identical frequencies: only the sample-size correction, -2·0.25/(2n-1) / 0.5 per SNP.
  n = np.array([50, 50])
  assert genetics.hudson_fst(p, n)[0, 1] == pytest.approx(-2 * 0.25 / 99 / 0.5)
  fixed = np.array([[0.0, 0.0], [1.0, 1.0]])
  assert genetics.hudson_fst(fixed, n)[0, 1] == pytest.approx(1.0)


def test_pca_two_sample_auc_separates_only_different_populations():
  dosage, labels = td.ld_cohort(600, 100, seed=0)  # two classes with different frequencies
  train, test, same = dosage[:200], dosage[200:400], dosage[400:]
  one_class = same[labels[400:] == 1]
  pca = genetics.fit_pca(train, 4)
  pcs = {
    'test': genetics.project(pca, test),
    'same': genetics.project(pca, same),
    'one_class': genetics.project(pca, one_class),
  }
  assert abs(genetics.two_sample_auc(pcs['test'], pcs['same'], seed=0) - 0.5) < 0.1
  # Half of the real test people have no synthetic counterpart: ideal AUC 0.75
  # (0.67-0.72 over seeds 0-3 with this k-NN).
  assert genetics.two_sample_auc(pcs['test'], pcs['one_class'], seed=0) > 0.62
  # The train PCA scores square-sum to the eigenvalues of the Gram matrix.
  scores = genetics.project(pca, train)
  np.testing.assert_allclose((scores**2).sum(0), pca['eigenvalues_K'], rtol=1e-6)


def test_randomized_pca_matches_the_exact_one(monkeypatch):
  """Above EXACT_PCA_MAX_PEOPLE the PCA is randomized: same eigenvalues and scores (up to sign)."""
  dosage, _ = td.ld_cohort(600, 100, seed=0)
  exact = genetics.fit_pca(dosage[:300], 4)
  monkeypatch.setattr(genetics, 'EXACT_PCA_MAX_PEOPLE', 0)
  randomized = genetics.fit_pca(dosage[:300], 4)
  np.testing.assert_allclose(randomized['eigenvalues_K'], exact['eigenvalues_K'], rtol=1e-8)
  a, b = genetics.project(exact, dosage), genetics.project(randomized, dosage)
  np.testing.assert_allclose(np.abs(b), np.abs(a), atol=1e-4)


def test_ld_by_distance_and_by_maf_are_means_over_the_binned_pairs():
  dosage, _ = td.ld_cohort(150, 40, seed=0)
  dosage[:, 7] = np.isin(np.arange(150), [0, 1, 2, 100, 101]).astype(np.int8)  # train MAF .015
  train, test = dosage[:100], dosage[100:]
  chrom = np.repeat(['1', '2'], 20)
  pos = np.cumsum(np.random.default_rng(0).integers(200, 5000, 40))  # irregular spacing
  max_lag = 6
  ref = genetics.real_reference(train, test, chrom, max_lag, 4, 64, pos_S=pos)
  _, curves = genetics.compare(ref, test, chrom, max_lag, 64)
  dist_edges, maf_edges = ref['ld_distance_edges'], ref['ld_maf_edges']
  # [0, 1 kb), then log-spaced to the longest distance within max_lag (same chromosome).
  longest = max(
    pos[i + k] - pos[i]
    for k in range(1, max_lag + 1)
    for i in range(40 - k)
    if chrom[i] == chrom[i + k]
  )
  np.testing.assert_allclose(dist_edges[[0, 1, -1]], [0, 1000, longest])
  assert len(dist_edges) == genetics.LD_DISTANCE_BINS + 1
  np.testing.assert_array_equal(maf_edges, genetics.MAF_EDGES)
  # Brute force: every same-chromosome pair at most max_lag SNPs apart, r² from corrcoef.
  maf = np.minimum(train.mean(0) / 2, 1 - train.mean(0) / 2)
  r2_test = np.corrcoef(test.T.astype(float)) ** 2
  by_dist = [[] for _ in range(len(dist_edges) - 1)]
  bp = [[] for _ in range(len(dist_edges) - 1)]
  by_maf = [[] for _ in range(len(maf_edges) - 1)]
  for i in range(40):
    for j in range(i + 1, min(i + max_lag, 39) + 1):
      if chrom[i] != chrom[j]:
        continue
      d = np.clip(np.searchsorted(dist_edges, pos[j] - pos[i], 'right') - 1, 0, len(by_dist) - 1)
      bp[d].append(pos[j] - pos[i])
      if np.isnan(r2_test[i, j]):
        continue
      by_dist[d].append(r2_test[i, j])
      m = np.clip(np.searchsorted(maf_edges, min(maf[i], maf[j]), 'right') - 1, 0, len(by_maf) - 1)
      by_maf[m].append(r2_test[i, j])
  want_dist = [np.mean(v) if v else np.nan for v in by_dist]
  want_maf = [np.mean(v) if v else np.nan for v in by_maf]
  np.testing.assert_allclose(curves['ld_distance'], want_dist, atol=1e-6)
  np.testing.assert_allclose(curves['ld_maf'], want_maf, atol=1e-6)
  np.testing.assert_allclose(ref['ld_distance_bp'], [np.mean(v) if v else np.nan for v in bp])
  assert len(by_maf[1]) == 2 * max_lag  # the rare SNP's pairs, bin [0.01, 0.05)
  assert np.isnan(curves['ld_maf'][0])  # no pair below MAF 0.01
  assert np.isfinite(want_dist).sum() >= 6  # the pairs spread over the distance bins


def test_no_positions_no_distance_curves():
  dosage, _ = td.ld_cohort(60, 20, seed=0)
  ref = genetics.real_reference(dosage[:40], dosage[40:], np.ones(20), 4, 3, 64)
  _, curves = genetics.compare(ref, dosage[40:], np.ones(20), 4, 64)
  assert 'ld_distance' not in curves and 'ld_maf' not in curves and 'ld_decay' in curves
