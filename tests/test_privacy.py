"""Tests for gdiff.evaluate.distances and gdiff.evaluate.privacy (known answers)."""

import evaluate_testdata as td
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gdiff.evaluate import distances, privacy


def pairwise_brute_force(query, reference, metric: str) -> np.ndarray:
  """The full (Nq, Nr) distance matrix in one tile of `metric`: the oracle of the blocked search."""
  prepare, tile = distances.METRICS[metric]
  q, r = jax.tree.map(jnp.asarray, (prepare(query), prepare(reference)))
  return np.array(tile(q, r))


@pytest.mark.parametrize('metric', ['angular', 'hamming', 'euclidean'])
@pytest.mark.parametrize('exclude_self', [False, True])
def test_blocked_nearest_equals_brute_force(metric, exclude_self):
  rng = np.random.default_rng(0)
  if metric == 'hamming':
    ref = rng.integers(0, 3, (37, 50)).astype(np.int8)
  else:
    ref = rng.normal(size=(37, 6, 2)).astype(np.float32)
  query = ref if exclude_self else ref[:29] * (1 if metric == 'hamming' else 1.1)
  full = pairwise_brute_force(query, ref, metric)
  if exclude_self:
    np.fill_diagonal(full, np.inf)
  dist, index = distances.nearest(query, ref, metric, k=3, block_size=8, exclude_self=exclude_self)
  np.testing.assert_allclose(dist, np.sort(full, 1)[:, :3], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.take_along_axis(full, index, 1), dist, rtol=1e-5, atol=1e-5)


def test_hamming_counts_differing_genotypes():
  a = np.array([[0, 1, 2, 2, 0]], np.int8)
  b = np.array([[0, 1, 2, 2, 0], [2, 1, 0, 2, 0], [1, 2, 1, 1, 1]], np.int8)
  dist, index = distances.nearest(a, b, 'hamming', k=3)
  np.testing.assert_array_equal(dist[0], [0, 2, 5])
  np.testing.assert_array_equal(index[0], [0, 1, 2])


def test_angular_distance_known_values():
  x = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [2.0, 0.0]], np.float32)
  full = pairwise_brute_force(x, x, 'angular')
  np.testing.assert_allclose(full[0], [0.0, 0.5, 1.0, 0.0], atol=1e-6)


def test_auc_hand_computed():
  # pos 3 beats all 3; pos 2 beats 2; pos 1 beats 1 and ties 1: (3 + 2 + 1.5) / 9.
  assert privacy.auc(np.array([3.0, 2, 1]), np.array([0.0, 1, 2.5])) == pytest.approx(6.5 / 9)
  assert privacy.auc(np.array([5.0, 6]), np.array([1.0, 2])) == 1.0
  assert privacy.auc(np.ones(4), np.ones(3)) == 0.5
  # Hanley-McNeil at AUC 0.5: var = (0.25 + (n-1)(1/3 - 1/4)·2) / n² for n = m.
  n = 80
  expected = np.sqrt((0.25 + 2 * (n - 1) * (1 / 3 - 0.25)) / n**2)
  assert privacy.auc_standard_error(0.5, n, n) == pytest.approx(expected)


def test_nnaa_same_distribution_is_half_and_copies_zero():
  rng = np.random.default_rng(1)
  real = rng.normal(size=(300, 16)).astype(np.float32)
  other = rng.normal(size=(300, 16)).astype(np.float32)
  same = privacy.nnaa(real, other, 'angular', block_size=64)
  for key in ('aa_truth', 'aa_syn', 'aa_ts'):
    assert abs(same[key] - 0.5) < 0.08, same
  copies = privacy.nnaa(real, real.copy(), 'angular', block_size=64)
  assert copies['aa_truth'] == 0.0
  assert copies['aa_syn'] == 0.0


def _split_cohort():
  dosage, _ = td.ld_cohort(360, 200, seed=0)
  return dosage[:200], dosage[200:280], dosage[280:]  # train, test, fresh synthetic


def test_copies_of_train_are_flagged():
  train, test, _ = _split_cohort()
  ref = privacy.make_reference(train, test, 'hamming', block_size=64)
  out, dcr = privacy.evaluate(ref, train[:120].copy())
  assert out['identical_copies'] == 120
  assert out['near_copies'] == 120
  assert out['dcr_syn_median'] == 0.0 and np.all(dcr == 0)
  assert out['dcr_share_below_holdout_p5'] == 1.0
  assert out['mia_auc'] > 0.7
  assert out['aa_truth_train'] < 0.45  # the copied people find themselves
  assert out['privacy_loss'] > 0.1


def test_fresh_sample_of_the_same_distribution_is_private():
  train, test, fresh = _split_cohort()
  ref = privacy.make_reference(train, test, 'hamming', block_size=64)
  out, _ = privacy.evaluate(ref, fresh)
  assert out['identical_copies'] == 0
  assert abs(out['mia_auc'] - 0.5) < 0.12
  assert abs(out['privacy_loss']) < 0.15
  assert out['dcr_share_below_holdout_p5'] < 0.2
  assert out['nnaa_n_holdout'] == 80 and out['nnaa_n_train'] == 80


def test_nnaa_compares_train_and_test_at_one_size():
  # NNAA depends on the set size, so train (640) and test (80) are both judged at
  # n = 80, the train side averaged over 5 seeded subsamples.
  rng = np.random.default_rng(5)
  train, test = rng.standard_normal((640, 16)), rng.standard_normal((80, 16))
  ref = privacy.make_reference(train, test, 'angular', block_size=128)
  out, _ = privacy.evaluate(ref, 1.3 * rng.standard_normal((300, 16)))
  assert out['nnaa_n_train'] == out['nnaa_n_holdout'] == 80
  assert out['nnaa_repeats_train'] == 5 and out['nnaa_repeats_holdout'] == 1


def test_hamming_over_snp_chunks_equals_direct(monkeypatch):
  rng = np.random.default_rng(2)
  g = rng.integers(0, 3, (20, 70)).astype(np.int8)
  direct = (g[:, None, :] != g[None, :, :]).sum(-1)
  monkeypatch.setattr(distances, '_HAMMING_CHUNK', 16)  # 70 SNPs -> 5 chunks, 10 padded
  np.testing.assert_array_equal(pairwise_brute_force(g, g, 'hamming'), direct)


def test_hamming_is_exact_for_every_genotype_pair():
  a, b = np.meshgrid(np.arange(3), np.arange(3))
  q, r = a.reshape(1, 9).astype(np.int8), b.reshape(1, 9).astype(np.int8)
  assert pairwise_brute_force(q, r, 'hamming')[0, 0] == 6.0  # 9 pairs, 3 of them equal
  rng = np.random.default_rng(5)
  g = rng.integers(0, 3, (30, 300)).astype(np.int8)
  direct = (g[:, None, :] != g[None, :, :]).sum(-1)
  np.testing.assert_array_equal(pairwise_brute_force(g, g, 'hamming'), direct)
