"""Tiny hand-made cohorts and a lossless fake codec for the evaluate tests."""

from __future__ import annotations

import dataclasses
import os

import h5py
import numpy as np

from gdiff.data import cohort as cohort_lib
from gdiff.evaluate import run


def ld_cohort(
  n: int,
  s: int,
  seed: int,
  block: int = 10,
  flip: float = 0.05,
  num_classes: int = 2,
  p_seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
  """Dosages with strong LD inside blocks of `block` SNPs and class-specific frequencies.

  Each haplotype draws one allele per block (frequency depends on class and block)
  and copies it to every SNP of the block, flipping each with probability `flip`.
  `p_seed` fixes the frequencies (the distribution), `seed` the people drawn.

  Returns:
    (dosage_NxS int8, label_ids_N int32) with labels 0..num_classes-1 in turn.
  """
  assert 0 <= flip <= 0.5 and block >= 1, (flip, block)  # flip > 1/2 would reverse the LD
  rng = np.random.default_rng([p_seed, seed])
  labels = np.arange(n) % num_classes
  blocks = -(-s // block)
  p_KxB = np.random.default_rng(p_seed).uniform(0.15, 0.85, (num_classes, blocks))
  dosage = np.zeros((n, s), np.int8)
  for _ in range(2):
    base = rng.random((n, blocks)) < p_KxB[labels]
    hap = np.repeat(base, block, axis=1)[:, :s]
    hap ^= rng.random((n, s)) < flip
    dosage += hap.astype(np.int8)
  return dosage, labels.astype(np.int32)


@dataclasses.dataclass(frozen=True)
class FakeCodec:
  """Lossless per-SNP z-score codec: S SNPs -> (S / C groups, C slots)."""

  mean_S: np.ndarray
  sd_S: np.ndarray
  slots: int = 4

  @classmethod
  def fit(cls, dosage_NxS, slots=4):
    x = np.asarray(dosage_NxS, np.float32)
    return cls(x.mean(0), np.maximum(x.std(0), 0.1), slots)

  @property
  def mask_GxC(self):
    return np.ones((len(self.mean_S) // self.slots, self.slots), bool)

  def encode(self, dosage_NxS):
    z = (np.asarray(dosage_NxS, np.float32) - self.mean_S) / self.sd_S
    return z.reshape(len(z), -1, self.slots).astype(np.float32)

  def decode(self, emb_NxGxC):
    x = np.asarray(emb_NxGxC).reshape(len(emb_NxGxC), -1) * self.sd_S + self.mean_S
    return np.clip(np.rint(x), 0, 2).astype(np.int8)


def write_workdir(
  workdir: str,
  dosage_NxS,
  label_ids_N,
  split_N,
  synthetic_NxS,
  synthetic_labels_N,
  classes=('a', 'b'),
  chroms=2,
) -> None:
  """A minimal W/data + W/samples/synthetic.h5 (the codec is supplied by the test)."""
  data = os.path.join(workdir, 'data')
  os.makedirs(os.path.join(data, 'shards'), exist_ok=True)
  n, s = dosage_NxS.shape
  labels = np.array(classes)[label_ids_N]
  cohort_lib.write_samples(data, [f'p{i}' for i in range(n)], labels, split_N, classes)
  chrom = np.repeat([str(c + 1) for c in range(chroms)], -(-s // chroms))[:s]
  half = s // 2
  for i, sl in enumerate((slice(0, half), slice(half, s))):
    variants = cohort_lib.Variants(
      chrom=chrom[sl],
      pos=np.arange(s)[sl] * 100 + 1,
      id=np.array([f'rs{j}' for j in range(s)])[sl],
      ref=np.array(['A'] * s)[sl],
      alt=np.array(['G'] * s)[sl],
    )
    cohort_lib.write_shard(cohort_lib.shard_path(data, i), variants, dosage_NxS[:, sl])
  os.makedirs(os.path.join(workdir, 'samples'), exist_ok=True)
  with h5py.File(os.path.join(workdir, 'samples', 'synthetic.h5'), 'w') as f:
    f.create_dataset('dosage', data=np.asarray(synthetic_NxS, np.int8))
    f.create_dataset('label_ids', data=np.asarray(synthetic_labels_N, np.int32))
    f.create_dataset(
      'labels', data=np.array(classes)[synthetic_labels_N].astype(object), dtype=h5py.string_dtype()
    )
    f.create_dataset(
      'samples',
      data=np.array([f's{i}' for i in range(len(synthetic_NxS))], dtype=object),
      dtype=h5py.string_dtype(),
    )
    f.attrs['classes'] = '["' + '", "'.join(classes) + '"]'


# 300 people: the split of `small_workdir`.
SMALL_SPLIT = np.array(['train'] * 180 + ['val'] * 50 + ['test'] * 70)


def small_workdir(workdir, monkeypatch) -> str:
  """An LD cohort of 300 people x 80 SNPs and 120 synthetic people written to `workdir`, with
  the fake codec fit on its train split patched in for `run._load_codec`; returns `workdir`."""
  dosage, labels = ld_cohort(300, 80, seed=0)
  syn, syn_labels = ld_cohort(120, 80, seed=1)
  write_workdir(str(workdir), dosage, labels, SMALL_SPLIT, syn, syn_labels)
  codec = FakeCodec.fit(dosage[SMALL_SPLIT == 'train'])
  monkeypatch.setattr(run, '_load_codec', lambda _: codec)
  return workdir
