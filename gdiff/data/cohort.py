"""The on-disk cohort that ingest writes and every later stage reads.

Layout of `WORKDIR/data/`:
  cohort.h5            samples (N,) str, labels (N,) str, label_ids (N,) int32,
                       split (N,) str in {train, val, test}; attr `classes` (JSON list).
  shards/shard-KKKKK.h5  one per block of kept variants, in genome order:
                       dosage (N, S_k) int8 (alt-allele count, missing already filled),
                       hap0 (N, S_k) int8 (the allele on the first haplotype; the
                       second is dosage - hap0),
                       chrom, id, ref, alt (S_k,) str; pos (S_k,) int64.
  manifest.json        what was read, kept and dropped and why (written by ingest),
                       and `phased` (see below).
  splits.tsv           sample, label, split (human-readable copy of the split).

Sample order is the same in every file. Classes are sorted label strings and
`label_ids` index into them.

Phase. `hap0` is always stored, but means a haplotype only when the manifest
says `phased: true`: the input was a VCF and no heterozygous call of a kept
SNP had unknown phase (`unphased_het_calls` 0; the rule is in
`gdiff.data.genotypes` and `gdiff.data.qc`). A phased cohort can be read as
haplotypes (`Cohort.haplotypes`); an unphased one (PLINK input, '0/1' calls,
filled heterozygous calls) only as genotypes (`Cohort.dosages`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator, Sequence

import h5py
import numpy as np

from gdiff.errors import InputError

SPLITS = ('train', 'val', 'test')
COHORT_FILE = 'cohort.h5'
SHARD_DIR = 'shards'
MANIFEST_FILE = 'manifest.json'
SPLITS_FILE = 'splits.tsv'
_STR = h5py.string_dtype('utf-8')


@dataclasses.dataclass(frozen=True)
class Variants:
  """The variant table, one entry per kept SNP, in genome order."""

  chrom: np.ndarray  # (S,) str
  pos: np.ndarray  # (S,) int64, 1-based
  id: np.ndarray  # (S,) str
  ref: np.ndarray  # (S,) str
  alt: np.ndarray  # (S,) str

  def __len__(self) -> int:
    return len(self.pos)

  def take(self, index) -> Variants:
    return Variants(*(getattr(self, f.name)[index] for f in dataclasses.fields(self)))

  @classmethod
  def concatenate(cls, parts: Sequence[Variants]) -> Variants:
    return cls(
      *(np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(cls))
    )


@dataclasses.dataclass(frozen=True)
class Cohort:
  """Samples, labels and splits of an ingested cohort; genotypes stay on disk."""

  directory: str
  samples: np.ndarray  # (N,) str
  labels: np.ndarray  # (N,) str
  label_ids: np.ndarray  # (N,) int32
  classes: tuple[str, ...]
  split: np.ndarray  # (N,) str
  shard_paths: tuple[str, ...]

  @property
  def num_samples(self) -> int:
    return len(self.samples)

  def indices(self, split: str) -> np.ndarray:
    """Row indices (sorted) of one split."""
    if split not in SPLITS:
      raise ValueError(f'unknown split {split!r}; expected one of {SPLITS}')
    return np.flatnonzero(self.split == split)

  def variants(self) -> Variants:
    parts = []
    for path in self.shard_paths:
      with h5py.File(path, 'r') as f:
        parts.append(_read_variants(f))
    return Variants.concatenate(parts)

  def iter_shards(self, rows: np.ndarray | None = None) -> Iterator[tuple[Variants, np.ndarray]]:
    """Yields (variants, dosage_NxSk int8) per shard, rows selected if given."""
    for path in self.shard_paths:
      with h5py.File(path, 'r') as f:
        dosage = f['dosage'][()]
        yield _read_variants(f), dosage if rows is None else dosage[rows]

  def dosages(self, split: str | None = None) -> np.ndarray:
    """All kept SNPs for one split (or everyone), (n, S) int8."""
    rows = None if split is None else self.indices(split)
    return np.concatenate([d for _, d in self.iter_shards(rows)], axis=1)

  @property
  def phased(self) -> bool:
    """Whether `hap0` holds haplotypes (the manifest's `phased`; False without a manifest)."""
    if not os.path.isfile(os.path.join(self.directory, MANIFEST_FILE)):
      return False
    return self.manifest().get('phased') is True

  def iter_haplotypes(
    self, rows: np.ndarray | None = None
  ) -> Iterator[tuple[Variants, np.ndarray]]:
    """Yields (variants, haplotypes_Nx2xSk int8 alleles) per shard, rows selected if given.

    Raises InputError for a cohort that is not phased (see the module docstring).
    """
    if not self.phased:
      manifest = os.path.join(self.directory, MANIFEST_FILE)
      raise InputError(
        f'{self.directory}: the cohort is not phased ({manifest} has no '
        f'"phased": true: PLINK input, or heterozygous calls of unknown phase '
        f'such as 0/1); it can be modelled as genotypes only'
      )
    for path in self.shard_paths:
      with h5py.File(path, 'r') as f:
        if 'hap0' not in f:
          raise InputError(f'{path}: no hap0 in a shard of a phased cohort (damaged cohort?)')
        dosage, hap0 = f['dosage'][()], f['hap0'][()]
        if rows is not None:
          dosage, hap0 = dosage[rows], hap0[rows]
        yield _read_variants(f), np.stack([hap0, dosage - hap0], axis=1)

  def haplotypes(self, split: str | None = None) -> np.ndarray:
    """All kept SNPs of a phased cohort for one split (or everyone), (n, 2, S) int8."""
    rows = None if split is None else self.indices(split)
    return np.concatenate([h for _, h in self.iter_haplotypes(rows)], axis=2)

  def manifest(self) -> dict:
    with open(os.path.join(self.directory, MANIFEST_FILE)) as f:
      return json.load(f)

  def input_header(self) -> tuple[list[tuple[str, int]], str | None]:
    """The input VCF header's ##contig (name, length) and ##reference (none for PLINK input
    or without a manifest), carried into the synthetic VCF."""
    if not os.path.isfile(os.path.join(self.directory, MANIFEST_FILE)):
      return [], None
    manifest = self.manifest()
    return [tuple(c) for c in manifest.get('contigs', [])], manifest.get('reference')


def _read_variants(f: h5py.File) -> Variants:
  return Variants(
    chrom=f['chrom'].asstr()[()],
    pos=f['pos'][()].astype(np.int64),
    id=f['id'].asstr()[()],
    ref=f['ref'].asstr()[()],
    alt=f['alt'].asstr()[()],
  )


def write_shard(
  path: str, variants: Variants, dosage_NxS: np.ndarray, hap0_NxS: np.ndarray | None = None
) -> None:
  """Writes one shard atomically (temporary name, then rename); `hap0` when given."""
  tmp = path + '.tmp'
  with h5py.File(tmp, 'w') as f:
    f.create_dataset(
      'dosage',
      data=np.asarray(dosage_NxS, np.int8),
      chunks=True,
      compression='gzip',
      compression_opts=1,
    )
    if hap0_NxS is not None:  # lzf, for ingest speed: about half gzip's time, twice its size
      f.create_dataset('hap0', data=np.asarray(hap0_NxS, np.int8), chunks=True, compression='lzf')
    f.create_dataset('pos', data=np.asarray(variants.pos, np.int64))
    for name in ('chrom', 'id', 'ref', 'alt'):
      f.create_dataset(name, data=np.asarray(getattr(variants, name), dtype=object), dtype=_STR)
  os.replace(tmp, path)


def write_samples(directory: str, samples, labels, split, classes=None) -> None:
  """Writes cohort.h5 and splits.tsv. `classes` defaults to the sorted labels."""
  samples = np.asarray(samples, dtype=object)
  labels = np.asarray(labels, dtype=object).astype(str)
  split = np.asarray(split, dtype=object).astype(str)
  classes = tuple(sorted(set(labels.tolist()))) if classes is None else tuple(classes)
  lookup = {c: i for i, c in enumerate(classes)}
  label_ids = np.array([lookup[x] for x in labels], np.int32)
  tmp = os.path.join(directory, COHORT_FILE + '.tmp')
  with h5py.File(tmp, 'w') as f:
    f.create_dataset('samples', data=samples, dtype=_STR)
    f.create_dataset('labels', data=labels.astype(object), dtype=_STR)
    f.create_dataset('label_ids', data=label_ids)
    f.create_dataset('split', data=split.astype(object), dtype=_STR)
    f.attrs['classes'] = json.dumps(list(classes))
  os.replace(tmp, os.path.join(directory, COHORT_FILE))
  with open(os.path.join(directory, SPLITS_FILE), 'w') as f:
    f.write('sample\tlabel\tsplit\n')
    for row in zip(samples, labels, split, strict=True):
      f.write('\t'.join(map(str, row)) + '\n')


def shard_path(directory: str, index: int) -> str:
  return os.path.join(directory, SHARD_DIR, f'shard-{index:05d}.h5')


def load_cohort(directory: str) -> Cohort:
  """Opens an ingested cohort (reads sample tables, not genotypes)."""
  path = os.path.join(directory, COHORT_FILE)
  with h5py.File(path, 'r') as f:
    samples = f['samples'].asstr()[()]
    labels = f['labels'].asstr()[()]
    label_ids = f['label_ids'][()].astype(np.int32)
    split = f['split'].asstr()[()]
    classes = tuple(json.loads(f.attrs['classes']))
  shard_dir = os.path.join(directory, SHARD_DIR)
  shards = tuple(
    sorted(os.path.join(shard_dir, p) for p in os.listdir(shard_dir) if p.endswith('.h5'))
  )
  return Cohort(directory, samples, labels, label_ids, classes, split, shards)
