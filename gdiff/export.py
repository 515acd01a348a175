"""Cohort export: one call writes a cohort (synthetic, baseline, real subset) in chosen formats.

`write_cohort` takes a dosage matrix (N, S) int8 of ALT-allele counts in {0, 1, 2}
(any other value is written as missing) and a `gdiff.data.cohort.Variants` table and
writes any of the `FORMATS`: bgzipped VCF, PLINK .bed/.bim/.fam and the label TSV
(with the genotype writers of `gdiff.data.writers`, which simulate uses too) and
the HDF5 file of a synthetic cohort (`H5Cohort`, also filled batch by batch by the
sample stage). The VCF and PLINK writers also take an HDF5 dataset and stream it one
chunk column of variants at a time, so a cohort need not fit in memory. The same
inputs give the same bytes (no timestamps in BGZF or HDF5 headers).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import h5py
import numpy as np

from gdiff.data import writers
from gdiff.data.cohort import Variants

_STR = h5py.string_dtype('utf-8')
CHUNK_BYTES = 1 << 20  # HDF5 chunk size target


def sample_ids(n: int, prefix: str = 'SYN') -> np.ndarray:
  """IDs SYN000001 ... (at least 6 digits; no underscores, which PLINK would split)."""
  width = max(6, len(str(n)))
  return np.array([f'{prefix}{i:0{width}d}' for i in range(1, n + 1)])


# --------------------------------------------------------------------------- HDF5


class H5Cohort:
  """Incremental writer of the synthetic HDF5 file (rows filled batch by batch).

  Datasets: dosage (N, S) int8, hap0 (N, S) int8 (optional: the first haplotype's allele of
  a phased cohort; the second is dosage - hap0), emb (N, G, C) float32 (optional), samples,
  labels (N,) str, label_ids (N,) int32; attr `classes` (JSON list). `write_variants` adds
  scikit-allel's layout, so `allel` reads the file without gdiff: `calldata/GT` (S, N, 2) int8
  (-1 missing; attr `phased`) and `variants/{CHROM,POS,ID,REF,ALT}`. No timestamps
  (track_times=False), so equal contents give equal bytes.
  """

  def __init__(
    self,
    path: str,
    num_samples: int,
    num_variants: int,
    emb_shape_GxC: tuple[int, int] | None,
    classes: Sequence[str],
    phased: bool = False,
  ):
    self.file = h5py.File(path, 'w', track_order=False)
    # ~1 MiB chunks (HDF5's default chunk cache), independent of the batch size so
    # that the bytes do not depend on it.
    rows = max(1, min(256, num_samples))
    self.file.create_dataset(
      'dosage',
      shape=(num_samples, num_variants),
      dtype=np.int8,
      track_times=False,
      chunks=(rows, max(1, min(num_variants, CHUNK_BYTES // rows))),
      compression='gzip',
      compression_opts=1,
      shuffle=False,
    )
    if phased:
      self.file.create_dataset(
        'hap0',
        shape=(num_samples, num_variants),
        dtype=np.int8,
        track_times=False,
        chunks=self.file['dosage'].chunks,
        compression='gzip',
        compression_opts=1,
        shuffle=False,
      )
    if emb_shape_GxC is not None:
      row_bytes = 4 * int(np.prod(emb_shape_GxC))
      emb_rows = max(1, min(num_samples, CHUNK_BYTES // row_bytes))
      self.file.create_dataset(
        'emb',
        shape=(num_samples, *emb_shape_GxC),
        dtype=np.float32,
        chunks=(emb_rows, *emb_shape_GxC),
        track_times=False,
      )
    self.file.attrs['classes'] = json.dumps(list(classes))

  def write_rows(
    self,
    lo: int,
    dosage_BxS: np.ndarray | None,
    emb_BxGxC: np.ndarray | None = None,
    hap0_BxS: np.ndarray | None = None,
  ):
    """Rows lo.. of `dosage`, `emb` and/or `hap0` (None leaves that dataset as it is)."""
    if dosage_BxS is not None:
      self.file['dosage'][lo : lo + dosage_BxS.shape[0]] = dosage_BxS
    if hap0_BxS is not None:
      self.file['hap0'][lo : lo + hap0_BxS.shape[0]] = hap0_BxS
    if emb_BxGxC is not None:
      self.file['emb'][lo : lo + emb_BxGxC.shape[0]] = emb_BxGxC

  def write_samples(self, samples, labels, label_ids) -> None:
    for name, data in (('samples', samples), ('labels', labels)):
      self.file.create_dataset(
        name,
        data=np.asarray(data, dtype=object).astype(str).astype(object),
        dtype=_STR,
        track_times=False,
      )
    self.file.create_dataset('label_ids', data=np.asarray(label_ids, np.int32), track_times=False)

  def write_variants(self, variants: Variants) -> None:
    """scikit-allel's `variants/*` and `calldata/GT`, from the filled dosage (and hap0) rows."""
    for name, values in (
      ('CHROM', variants.chrom),
      ('ID', variants.id),
      ('REF', variants.ref),
      ('ALT', variants.alt),
    ):
      self.file.create_dataset(
        f'variants/{name}',
        data=np.asarray(values).astype(str).astype(object),
        dtype=_STR,
        track_times=False,
      )
    self.file.create_dataset(
      'variants/POS', data=np.asarray(variants.pos, np.int32), track_times=False
    )
    dosage = self.file['dosage']
    n, s = dosage.shape
    phased = 'hap0' in self.file
    gt = self.file.create_dataset(
      'calldata/GT',
      shape=(s, n, 2),
      dtype=np.int8,
      chunks=(max(1, min(s, CHUNK_BYTES // max(2 * n, 1))), n, 2) if n and s else None,
      compression='gzip',
      compression_opts=1,
      track_times=False,
    )
    gt.attrs['phased'] = phased
    for lo, slab_NxW in writers.column_slabs(dosage):
      width = slab_NxW.shape[1]
      if phased:
        first = np.asarray(self.file['hap0'][:, lo : lo + width], np.int8)
      else:  # unphased: the lower allele first, as VCF's 0/1
        first = np.where(slab_NxW == 2, 1, 0).astype(np.int8)
      second = slab_NxW - first
      missing = (slab_NxW < 0) | (slab_NxW > 2)
      pair = np.stack([first, second], -1).astype(np.int8)  # (N, W, 2)
      pair[missing] = -1
      gt[lo : lo + width] = pair.transpose(1, 0, 2)

  def close(self) -> None:
    self.file.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def write_cohort(
  directory: str,
  dosage_NxS: np.ndarray,
  variants: Variants,
  samples: Sequence[str],
  labels: Sequence[str],
  classes: Sequence[str],
  *,
  emb_NxGxC: np.ndarray | None = None,
  hap0_NxS: np.ndarray | None = None,
  prefix: str = 'synthetic',
  formats: Sequence[str] = ('h5', 'vcf', 'plink', 'labels'),
  vcf_header_lines: Sequence[str] = (),
  vcf_contigs: Sequence[tuple[str, int]] = (),
) -> list[str]:
  """Writes any cohort (synthetic, baseline, real subset) in the chosen formats.

  Args:
    directory: output folder (created).
    dosage_NxS: (N, S) int8 ALT counts.
    variants: the variant table.
    samples, labels: N IDs and label strings.
    classes: the class names; label_ids index into them.
    emb_NxGxC: optional embedding stored in the HDF5 file.
    hap0_NxS: optional first haplotype (a phased cohort): the VCF is then phased and the
      HDF5 file keeps it.
    prefix: file name stem.
    formats: keys of `FORMATS`.
    vcf_header_lines: extra '##key=value' lines of the VCF header (provenance).
    vcf_contigs: (name, length) of the input's contigs, for the VCF header.

  Returns:
    The paths written.
  """
  os.makedirs(directory, exist_ok=True)
  lookup = {c: i for i, c in enumerate(classes)}
  label_ids = np.array([lookup[y] for y in labels], np.int32)
  args = dict(
    directory=directory,
    prefix=prefix,
    dosage=dosage_NxS,
    variants=variants,
    samples=samples,
    labels=labels,
    label_ids=label_ids,
    classes=classes,
    emb=emb_NxGxC,
    hap0=hap0_NxS,
    vcf_header_lines=tuple(vcf_header_lines),
    vcf_contigs=tuple(tuple(c) for c in vcf_contigs),
  )
  paths = []
  for name in formats:
    paths += FORMATS[name](**args)
  return paths


def _h5(directory, prefix, dosage, variants, samples, labels, label_ids, classes, emb, hap0, **_):
  path = os.path.join(directory, prefix + '.h5')
  with H5Cohort(
    path,
    dosage.shape[0],
    dosage.shape[1],
    None if emb is None else emb.shape[1:],
    classes,
    phased=hap0 is not None,
  ) as f:
    f.write_rows(0, dosage, emb, hap0)
    f.write_samples(samples, labels, label_ids)
    f.write_variants(variants)
  return [path]


def _vcf(directory, prefix, dosage, variants, samples, hap0, vcf_header_lines, vcf_contigs, **_):
  path = os.path.join(directory, prefix + '.vcf.gz')
  writers.write_vcf(
    path,
    dosage,
    variants,
    samples,
    hap0_NxS=hap0,
    header_lines=vcf_header_lines,
    contigs=vcf_contigs,
  )
  return [path, path + '.tbi']


def _plink(directory, prefix, dosage, variants, samples, labels, classes, **_):
  stem = os.path.join(directory, prefix)
  pheno = writers.plink_phenotype(labels, classes)
  writers.write_plink(stem, dosage, variants, samples, pheno=pheno)
  return [stem + ext for ext in ('.bed', '.bim', '.fam')]


def _labels(directory, prefix, samples, labels, classes, **_):
  path = os.path.join(directory, prefix + '.labels.tsv')
  writers.write_labels(path, samples, labels)
  pheno = os.path.join(directory, prefix + '.pheno.tsv')
  writers.write_pheno(pheno, samples, labels, classes)
  return [path, pheno]


FORMATS = {'h5': _h5, 'vcf': _vcf, 'plink': _plink, 'labels': _labels}
