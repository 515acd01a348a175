"""Tests for gdiff.evaluate.baselines."""

import evaluate_testdata as td
import numpy as np
import pytest

from gdiff.evaluate import baselines


def _real(segment_snps=50.0, with_codec=False):
  dosage, labels = td.ld_cohort(200, 120, seed=0)
  chrom = np.repeat(['1', '2'], 60)
  codec = td.FakeCodec.fit(dosage) if with_codec else None
  emb = codec.encode(dosage) if with_codec else None
  return baselines.RealTrain(dosage, labels, chrom, codec, emb, segment_snps)


@pytest.mark.parametrize('name', sorted(baselines.BASELINES))
def test_shapes_counts_and_seeding(name):
  real = _real(with_codec=True)
  dosage, labels = baselines.generate(name, real, [7, 5], seed=3)
  assert dosage.shape == (12, 120) and dosage.dtype == np.int8
  assert set(np.unique(dosage)) <= {0, 1, 2}
  np.testing.assert_array_equal(labels, [0] * 7 + [1] * 5)
  again, _ = baselines.generate(name, real, [7, 5], seed=3)
  np.testing.assert_array_equal(dosage, again)
  other, _ = baselines.generate(name, real, [7, 5], seed=4)
  assert not np.array_equal(dosage, other)


def test_resample_copies_people_of_the_same_class():
  real = _real()
  dosage, labels = baselines.generate('resample', real, [10, 10], seed=0)
  for row, c in zip(dosage, labels):
    matches = np.flatnonzero((real.dosage_NxS == row).all(1))
    assert len(matches) and np.all(real.label_ids_N[matches] == c)


def test_independent_matches_class_frequencies():
  real = _real()
  dosage, _ = baselines.generate('independent', real, [4000, 0], seed=0)
  p_class = real.dosage_NxS[real.label_ids_N == 0].mean(0) / 2
  np.testing.assert_allclose(dosage.mean(0) / 2, p_class, atol=0.03)


def test_mosaic_segments_come_from_same_class_people():
  # Segments longer than a chromosome: each chromosome is one donor's copy.
  real = _real(segment_snps=1e9)
  dosage, labels = baselines.generate('mosaic', real, [5, 5], seed=0)
  for row, c in zip(dosage, labels):
    for part in (slice(0, 60), slice(60, 120)):
      donors = np.flatnonzero((real.dosage_NxS[:, part] == row[part]).all(1))
      assert len(donors) and np.any(real.label_ids_N[donors] == c)
  # Short segments mix donors: a mosaic row is (almost surely) nobody's full copy.
  real = _real(segment_snps=5)
  dosage, _ = baselines.generate('mosaic', real, [5, 5], seed=0)
  assert not any((real.dosage_NxS == row).all(1).any() for row in dosage)


def test_gaussian_keeps_the_class_means():
  real = _real(with_codec=True)
  dosage, _ = baselines.generate('gaussian', real, [2000, 0], seed=0)
  p_class = real.dosage_NxS[real.label_ids_N == 0].mean(0)
  # Rounding in the decoder biases a little; the class mean is kept to ~0.1 dosage.
  assert np.abs(dosage.mean(0) - p_class).mean() < 0.1
  assert np.corrcoef(dosage.mean(0), p_class)[0, 1] > 0.95
