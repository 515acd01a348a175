"""Simple generators every report compares gdiff with (the table `BASELINES`).

Each takes the real training cohort and the number of people wanted per class
and returns (dosage_NxS int8, label_ids_N int32), seeded by a numpy Generator:

  independent  each SNP drawn as Binomial(2, p_class) from per-class allele
               frequencies: realistic frequencies, no LD, private.
  gaussian     per-class Gaussian in the embedding space with the class's sample
               mean and (rank n_c - 1) sample covariance, drawn exactly as
               mean + Σ_i z_i (x_i - mean) / sqrt(n_c - 1), then decoded by the codec.
  resample     training people drawn with replacement: exact copies, the leak reference.
  mosaic       genotype-level segment copying: runs of consecutive SNPs with
               geometric lengths (mean `segment_snps`, cut at chromosome ends),
               each copied from a random training person of the same class
               (genotypes are unphased, so whole genotypes are copied, not haplotypes).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from gdiff import rng as rng_lib


@dataclasses.dataclass(frozen=True)
class RealTrain:
  """What the baselines may learn from: the real train split only."""

  dosage_NxS: np.ndarray  # int8
  label_ids_N: np.ndarray  # int32
  chrom_S: np.ndarray  # chromosome of each SNP, genome order
  codec: Any = None  # gdiff.embedding.codec.Codec (gaussian only)
  emb_NxGxC: np.ndarray | None = None  # codec.encode(dosage_NxS) (gaussian only)
  segment_snps: float = 50.0  # mosaic: mean segment length in SNPs


def _labels(counts_K) -> np.ndarray:
  counts_K = np.asarray(counts_K, np.int64)
  return np.repeat(np.arange(len(counts_K)), counts_K).astype(np.int32)


def _class_rows(real: RealTrain, c: int) -> np.ndarray:
  rows = np.flatnonzero(real.label_ids_N == c)
  if not len(rows):
    raise ValueError(f'class {c} is requested but has no training people')
  return rows


def independent(real: RealTrain, counts_K, rng: np.random.Generator):
  """Each SNP Binomial(2, p_class); see the module docstring."""
  labels = _labels(counts_K)
  out = np.zeros((len(labels), real.dosage_NxS.shape[1]), np.int8)
  for c, count in enumerate(counts_K):
    if count:
      p = real.dosage_NxS[_class_rows(real, c)].mean(0) / 2
      out[labels == c] = rng.binomial(2, p, size=(count, len(p)))
  return out, labels


def resample(real: RealTrain, counts_K, rng: np.random.Generator):
  """Training people of the same class drawn with replacement (exact copies)."""
  labels = _labels(counts_K)
  out = np.zeros((len(labels), real.dosage_NxS.shape[1]), np.int8)
  for c, count in enumerate(counts_K):
    if count:
      out[labels == c] = real.dosage_NxS[rng.choice(_class_rows(real, c), count)]
  return out, labels


def mosaic(real: RealTrain, counts_K, rng: np.random.Generator):
  """Runs of SNPs copied from random same-class training people."""
  labels = _labels(counts_K)
  s = real.dosage_NxS.shape[1]
  chrom = np.asarray(real.chrom_S)
  chrom_start = np.r_[True, chrom[1:] != chrom[:-1]]
  out = np.zeros((len(labels), s), np.int8)
  cols = np.arange(s)
  for row, c in enumerate(labels):
    donors = _class_rows(real, c)
    # A new segment starts at each SNP with probability 1/L (geometric lengths, mean L).
    starts = chrom_start | (rng.random(s) < 1.0 / real.segment_snps)
    segment = np.cumsum(starts) - 1
    donor = rng.choice(donors, segment[-1] + 1)[segment]
    out[row] = real.dosage_NxS[donor, cols]
  return out, labels


def gaussian(real: RealTrain, counts_K, rng: np.random.Generator):
  """Per-class Gaussian in the embedding space, decoded by the codec."""
  if real.codec is None or real.emb_NxGxC is None:
    raise ValueError('the gaussian baseline needs the codec and the train embedding')
  labels = _labels(counts_K)
  shape = real.emb_NxGxC.shape[1:]
  emb = np.zeros((len(labels),) + shape, np.float32)
  for c, count in enumerate(counts_K):
    if not count:
      continue
    x = real.emb_NxGxC[_class_rows(real, c)].reshape(-1, int(np.prod(shape))).astype(np.float64)
    mean = x.mean(0)
    centred = (x - mean) / np.sqrt(max(len(x) - 1, 1))
    z = rng.standard_normal((count, len(x)))
    emb[labels == c] = (mean + z @ centred).reshape((count,) + shape)
  emb = emb * np.asarray(real.codec.mask_GxC, bool)
  chunk = 1024  # bounds the decoder's working memory
  dosage = [
    np.asarray(real.codec.decode(emb[a : a + chunk]), np.int8) for a in range(0, len(emb), chunk)
  ]
  return np.concatenate(dosage), labels


BASELINES = {
  'independent': independent,
  'gaussian': gaussian,
  'resample': resample,
  'mosaic': mosaic,
}


def generate(name: str, real: RealTrain, counts_K, seed: int):
  """Runs baseline `name` (a key of BASELINES) for `counts_K` people per class.

  Returns:
    (dosage_NxS int8, label_ids_N int32), people grouped by class.
  """
  if name not in BASELINES:
    raise KeyError(f'unknown baseline {name!r}; expected one of {sorted(BASELINES)}')
  rng = rng_lib.numpy_stream(seed, 'baseline', sorted(BASELINES).index(name))
  return BASELINES[name](real, counts_K, rng)
