"""The evaluate tests rest on two properties of their fixtures; check them here."""

import evaluate_testdata as td
import numpy as np


def test_fake_codec_is_lossless():
  dosage, _ = td.ld_cohort(60, 40, seed=1)
  codec = td.FakeCodec.fit(dosage)
  emb = codec.encode(dosage)
  assert emb.shape == (60, 10, 4) and codec.mask_GxC.shape == (10, 4)
  np.testing.assert_array_equal(codec.decode(emb), dosage)


def test_ld_cohort_has_ld_inside_blocks_only_and_class_frequencies():
  dosage, labels = td.ld_cohort(800, 40, seed=0, block=10)
  r2 = np.corrcoef(dosage.T.astype(float)) ** 2
  same_block = np.equal.outer(np.arange(40) // 10, np.arange(40) // 10)
  off_diagonal = ~np.eye(40, dtype=bool)
  assert r2[same_block & off_diagonal].mean() > 0.5
  assert r2[~same_block].mean() < 0.05
  freq = np.stack([dosage[labels == k].mean(0) / 2 for k in (0, 1)])
  assert np.abs(freq[0] - freq[1]).mean() > 0.1
