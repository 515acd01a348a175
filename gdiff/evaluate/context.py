"""What every metric family reads: the real side of one evaluation, built once.

`Context` holds the evaluate config, the real splits that evaluate.holdout lets the
stage read (genotypes, labels, embeddings), the codec and gdiff's synthetic cohort.
Real-side references (a PCA fit on train, classifiers trained on real train, ...) are
computed by a family's builder on first use and kept: `ctx.reference(builder)`.
`Cohort` is one set of people judged: a method's output, or real held-out people.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Callable
from typing import Any

import ml_collections
import numpy as np

from gdiff import rng
from gdiff.evaluate import protocol

ENCODE_CHUNK = 1024


def encode(codec, dosage_NxS: np.ndarray) -> np.ndarray:
  """codec.encode in chunks, as float32 numpy (N, G, C)."""
  parts = [
    np.asarray(codec.encode(dosage_NxS[a : a + ENCODE_CHUNK]), np.float32)
    for a in range(0, len(dosage_NxS), ENCODE_CHUNK)
  ]
  return np.concatenate(parts)


@dataclasses.dataclass(frozen=True)
class Cohort:
  """One set of people judged like a synthetic cohort."""

  name: str
  dosage_NxS: np.ndarray  # int8
  label_ids_N: np.ndarray  # int32
  emb_NxGxC: np.ndarray  # codec.encode(dosage_NxS): the embedding a user would share
  emb_as_sampled_NxGxC: np.ndarray | None = None  # gdiff: the embedding as sampled


@dataclasses.dataclass(eq=False)
class Context:
  """The real references of one evaluation, shared by every family and method.

  Args:
    config: the full config (`seed` and `evaluate` are read).
    classes: class names; label ids index them.
    chrom_S: chromosome of each SNP.
    codec: the embedding codec (`encode`, `decode`, `mask_GxC`).
    dosage, labels: split -> real genotypes (N, S) int8 and label ids (N,), for the
      splits of `holdout.splits` only.
    split_sizes: people per split of the whole cohort (read or not).
    synthetic: gdiff's cohort.
    pos_S: base-pair position of each SNP (None: unknown; no LD-by-distance curve).
  """

  config: ml_collections.ConfigDict
  classes: tuple[str, ...]
  chrom_S: np.ndarray
  codec: Any
  dosage: dict[str, np.ndarray]
  labels: dict[str, np.ndarray]
  split_sizes: dict[str, int]
  synthetic: Cohort
  pos_S: np.ndarray | None = None
  _references: dict = dataclasses.field(default_factory=dict, repr=False)
  # Rows judged in threads (`parallel.pool`) share the references: each is built once, by
  # the first thread that asks; another that asks meanwhile waits for that one only.
  _locks: dict = dataclasses.field(default_factory=dict, repr=False)
  _locks_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

  @property
  def ev(self) -> ml_collections.ConfigDict:
    return self.config.evaluate

  @property
  def seed(self):
    return self.config.seed

  @property
  def holdout(self) -> protocol.Holdout:
    return protocol.HOLDOUTS[self.ev.holdout]

  @property
  def num_classes(self) -> int:
    return len(self.classes)

  @property
  def block_size(self) -> int:
    return int(self.ev.block_size)

  @property
  def max_lag(self) -> int:
    return int(self.ev.ld_max_distance_snps)

  @property
  def steps(self) -> int:
    return int(self.ev.classifier_steps)

  @property
  def seeds(self) -> list[int]:
    """Classifier seeds, shared by every method so that recovery pairs runs by seed."""
    return rng.classifier_seeds(self.seed, self.ev.seeds)

  def seeds_of(self, cohort: Cohort) -> list[int]:
    """Classifier seeds of one cohort: all of `seeds` for the judged one, the first
    evaluate.baseline_seeds (0: all) for a baseline, so recovery still pairs runs by seed."""
    k = int(self.ev.baseline_seeds)
    return self.seeds if cohort.name == self.synthetic.name or k <= 0 else self.seeds[:k]

  @property
  def counts_K(self) -> np.ndarray:
    """Synthetic people per class (the baselines make as many)."""
    return np.bincount(self.synthetic.label_ids_N, minlength=self.num_classes)

  @functools.cached_property
  def emb(self) -> dict[str, np.ndarray]:
    """split -> codec.encode of the real split (N, G, C)."""
    return {s: encode(self.codec, x) for s, x in self.dosage.items()}

  @functools.cached_property
  def classifier_sets(self) -> dict:
    """protocol.classifier_sets: real (x, y) for train, select and report."""
    return protocol.classifier_sets(self.holdout.name, self.emb, self.labels, self.seed)

  def cohort(self, name: str, dosage_NxS, label_ids_N) -> Cohort:
    """A cohort to judge, with the embedding its genotypes encode to."""
    return Cohort(name, dosage_NxS, label_ids_N, encode(self.codec, dosage_NxS))

  def holdout_cohort(self) -> Cohort:
    """The real held-out people, judged like a synthetic cohort in the reference row."""
    held = self.holdout.name
    return Cohort(f'real {held}', self.dosage[held], self.labels[held], self.emb[held])

  def reference(self, build: Callable[[Context], Any]) -> Any:
    """build(self), computed on first use and kept (a real-side reference)."""
    with self._locks_lock:
      lock = self._locks.setdefault(build, threading.RLock())
    with lock:  # builders ask for other builders' references, never in a cycle
      if build not in self._references:
        self._references[build] = build(self)
      return self._references[build]
