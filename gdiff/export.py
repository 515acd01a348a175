"""Writers for genotype cohorts: bgzipped VCF, PLINK .bed/.bim/.fam, HDF5 and a label TSV.

All writers take a dosage matrix (N, S) int8 of ALT-allele counts in {0, 1, 2}
(any other value is written as missing) and a `gdiff.data.cohort.Variants` table,
so the sample stage, the evaluation and the baselines export the same way
(`write_cohort`). The VCF and PLINK writers also take an HDF5 dataset and stream it
one chunk column of variants at a time, so a cohort need not fit in memory. Every
writer is deterministic: the same inputs give the same bytes (no timestamps in BGZF
or HDF5 headers).

BGZF compression uses htslib's `bgzip` when it is on PATH (the reference
implementation, multi-threaded) and otherwise Biopython's `Bio.bgzf` (pure Python
over zlib). Both write standard BGZF blocks with an EOF marker, so `tabix -p vcf`
indexes either; their bytes differ, so byte-identity holds per machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Sequence

import h5py
import numpy as np

from gdiff.data.cohort import Variants

_STR = h5py.string_dtype('utf-8')
# Unphased GT per dosage value (as uint8); everything else is missing.
_GT = np.full((256, 3), np.frombuffer(b'./.', np.uint8), np.uint8)
_GT[0], _GT[1], _GT[2] = (np.frombuffer(g, np.uint8) for g in (b'0/0', b'0/1', b'1/1'))
# VCF text per block of variants (each genotype takes 4 bytes).
VCF_BLOCK_BYTES = 1 << 24
CHUNK_BYTES = 1 << 20  # HDF5 chunk size target


def sample_ids(n: int, prefix: str = 'SYN') -> np.ndarray:
  """IDs SYN000001 ... (at least 6 digits; no underscores, which PLINK would split)."""
  width = max(6, len(str(n)))
  return np.array([f'{prefix}{i:0{width}d}' for i in range(1, n + 1)])


def _check(dosage_NxS: np.ndarray, variants: Variants, samples: Sequence[str]) -> None:
  n, s = dosage_NxS.shape
  if s != len(variants) or n != len(samples):
    raise ValueError(f'dosage {dosage_NxS.shape} does not match {len(samples)} samples x '
                     f'{len(variants)} variants')


def column_slabs(dosage_NxS, width: int | None = None):
  """Yields (lo, dosage_NxW numpy) over variant slabs of an array or an HDF5 dataset.

  An HDF5 dataset is read one chunk column at a time (its chunk width), so each
  compressed chunk is read once and memory stays at N x width; a numpy array is
  yielded whole (a view, no copy).
  """
  s = dosage_NxS.shape[1]
  if width is None:
    chunks = getattr(dosage_NxS, 'chunks', None)
    width = chunks[1] if chunks else max(s, 1)
  for lo in range(0, s, width):
    yield lo, np.asarray(dosage_NxS[:, lo:lo + width])


# ---------------------------------------------------------------------------- VCF


def vcf_header(variants: Variants, samples: Sequence[str], source: str = 'gdiff') -> bytes:
  """VCFv4.2 header: contigs (length = max position seen), GT, and the #CHROM line."""
  lines = ['##fileformat=VCFv4.2', f'##source={source}']
  chrom = np.asarray(variants.chrom).astype(str)
  pos = np.asarray(variants.pos, np.int64)
  _, first = np.unique(chrom, return_index=True)
  for c in chrom[np.sort(first)]:  # in file order
    lines.append(f'##contig=<ID={c},length={int(pos[chrom == c].max())}>')
  lines.append('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">')
  lines.append('\t'.join(['#CHROM', 'POS', 'ID', 'REF', 'ALT', 'QUAL', 'FILTER', 'INFO',
                          'FORMAT', *map(str, samples)]))
  return ('\n'.join(lines) + '\n').encode()


def vcf_records(dosage_NxS: np.ndarray, variants: Variants) -> bytes:
  """VCF body lines, one per variant: GT fields built with one table lookup.

  Args:
    dosage_NxS: (N, S) int8 ALT counts.
    variants: the S variants.

  Returns:
    The text of S records.
  """
  block_SbxN = np.ascontiguousarray(np.asarray(dosage_NxS, np.int8).T).view(np.uint8)
  sb, n = block_SbxN.shape
  cells = np.empty((sb, n, 4), np.uint8)
  cells[:, :, :3] = _GT[block_SbxN]
  cells[:, :, 3] = ord('\t')
  cells[:, -1, 3] = ord('\n')
  rows = cells.reshape(sb, 4 * n)
  v = variants
  prefixes = [f'{c}\t{p}\t{i}\t{r}\t{a}\t.\tPASS\t.\tGT\t'.encode()
              for c, p, i, r, a in zip(v.chrom, v.pos, v.id, v.ref, v.alt)]
  return b''.join(p + r.tobytes() for p, r in zip(prefixes, rows))


@contextlib.contextmanager
def _bgzip_pipe(path: str, threads: int):
  with open(path, 'wb') as out:
    proc = subprocess.Popen(['bgzip', '-c', '-@', str(threads)], stdin=subprocess.PIPE,
                            stdout=out)
    try:
      yield proc.stdin
    finally:
      proc.stdin.close()
      if proc.wait() != 0:
        raise OSError(f'bgzip failed (exit {proc.returncode}) writing {path}')


@contextlib.contextmanager
def _bgzf_python(path: str, threads: int):
  del threads
  from Bio import bgzf  # optional: only needed without htslib's bgzip
  with open(path, 'wb') as out:
    writer = bgzf.BgzfWriter(fileobj=out)
    yield writer
    writer.close()  # writes the EOF block


BGZF_WRITERS = {'bgzip': _bgzip_pipe, 'python': _bgzf_python}


def default_compressor() -> str:
  return 'bgzip' if shutil.which('bgzip') else 'python'


def write_vcf(path: str, dosage_NxS: np.ndarray, variants: Variants,
              samples: Sequence[str], *, compressor: str | None = None,
              threads: int | None = None) -> None:
  """Writes a bgzipped VCFv4.2 with unphased GT (tabix-indexable if variants are sorted).

  Args:
    path: output .vcf.gz.
    dosage_NxS: (N, S) int8 ALT counts, a numpy array or an HDF5 dataset (read by chunk
      column); values outside {0, 1, 2} are written './.'.
    variants: the variant table (genome order).
    samples: N sample IDs.
    compressor: a key of `BGZF_WRITERS`; default `bgzip` if on PATH.
    threads: bgzip compression threads (default: all CPUs).
  """
  _check(dosage_NxS, variants, samples)
  compressor = compressor or default_compressor()
  threads = threads or os.cpu_count() or 1
  block = max(1, VCF_BLOCK_BYTES // (4 * max(dosage_NxS.shape[0], 1)))
  with BGZF_WRITERS[compressor](path, threads) as f:
    f.write(vcf_header(variants, samples))
    for start, slab_NxW in column_slabs(dosage_NxS):
      width = slab_NxW.shape[1]
      for lo in range(0, width, block):
        hi = min(width, lo + block)
        f.write(vcf_records(slab_NxW[:, lo:hi], variants.take(slice(start + lo, start + hi))))


# -------------------------------------------------------------------------- PLINK


def write_plink(prefix: str, dosage_NxS: np.ndarray, variants: Variants,
                samples: Sequence[str], *, num_threads: int | None = None) -> None:
  """Writes PREFIX.bed/.bim/.fam with bed_reader, streamed by variant; A1 = ALT.

  plink2 reads .bim column 5 (A1) as ALT and column 6 as REF, so its --freq ALT_FREQS
  equal mean(dosage) / 2. Family IDs equal sample IDs; parents, sex and phenotype are
  unknown (labels travel in the labels TSV).

  Args:
    prefix: output path without extension.
    dosage_NxS: (N, S) int8 ALT counts, a numpy array or an HDF5 dataset; values outside
      {0, 1, 2} become missing.
    variants: the variant table.
    samples: N sample IDs (no whitespace).
    num_threads: bed_reader threads (default: all).
  """
  import bed_reader
  _check(dosage_NxS, variants, samples)
  samples = np.asarray(samples).astype(str)
  n = len(samples)
  properties = {
      'fid': samples, 'iid': samples, 'father': np.full(n, '0'), 'mother': np.full(n, '0'),
      'sex': np.zeros(n, np.int32), 'pheno': np.full(n, '-9'),
      'chromosome': np.asarray(variants.chrom).astype(str),
      'sid': np.asarray(variants.id).astype(str),
      'cm_position': np.zeros(len(variants)),
      'bp_position': np.asarray(variants.pos, np.int32),
      'allele_1': np.asarray(variants.alt).astype(str),
      'allele_2': np.asarray(variants.ref).astype(str),
  }
  n, s = dosage_NxS.shape
  with bed_reader.create_bed(prefix + '.bed', n, s, properties=properties, count_A1=True,
                             num_threads=num_threads) as bed:
    for _, slab_NxW in column_slabs(dosage_NxS):
      # A fresh, writeable, variant-major copy (bed_reader refuses read-only arrays).
      slab_WxN = np.array(slab_NxW.T, np.int8, order='C')
      slab_WxN[(slab_WxN < 0) | (slab_WxN > 2)] = -127  # missing
      for row_N in slab_WxN:
        bed.write(row_N)


# --------------------------------------------------------------------------- HDF5


class H5Cohort:
  """Incremental writer of the synthetic HDF5 file (rows filled batch by batch).

  Datasets: dosage (N, S) int8, emb (N, G, C) float32 (optional), samples, labels (N,) str,
  label_ids (N,) int32; attr `classes` (JSON list). No timestamps (track_times=False),
  so equal contents give equal bytes.
  """

  def __init__(self, path: str, num_samples: int, num_variants: int,
               emb_shape_GxC: tuple[int, int] | None, classes: Sequence[str]):
    self.file = h5py.File(path, 'w', track_order=False)
    # ~1 MiB chunks (HDF5's default chunk cache), independent of the batch size so
    # that the bytes do not depend on it.
    rows = max(1, min(256, num_samples))
    self.file.create_dataset(
        'dosage', shape=(num_samples, num_variants), dtype=np.int8, track_times=False,
        chunks=(rows, max(1, min(num_variants, CHUNK_BYTES // rows))),
        compression='gzip', compression_opts=1, shuffle=False)
    if emb_shape_GxC is not None:
      row_bytes = 4 * int(np.prod(emb_shape_GxC))
      emb_rows = max(1, min(num_samples, CHUNK_BYTES // row_bytes))
      self.file.create_dataset('emb', shape=(num_samples, *emb_shape_GxC), dtype=np.float32,
                               chunks=(emb_rows, *emb_shape_GxC), track_times=False)
    self.file.attrs['classes'] = json.dumps(list(classes))

  def write_rows(self, lo: int, dosage_BxS: np.ndarray | None,
                 emb_BxGxC: np.ndarray | None = None):
    """Rows lo.. of `dosage` and/or `emb` (None leaves that dataset as it is)."""
    if dosage_BxS is not None:
      self.file['dosage'][lo:lo + dosage_BxS.shape[0]] = dosage_BxS
    if emb_BxGxC is not None:
      self.file['emb'][lo:lo + emb_BxGxC.shape[0]] = emb_BxGxC

  def write_samples(self, samples, labels, label_ids) -> None:
    for name, data in (('samples', samples), ('labels', labels)):
      self.file.create_dataset(name, data=np.asarray(data, dtype=object).astype(str)
                               .astype(object), dtype=_STR, track_times=False)
    self.file.create_dataset('label_ids', data=np.asarray(label_ids, np.int32),
                             track_times=False)

  def close(self) -> None:
    self.file.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def write_labels(path: str, samples: Sequence[str], labels: Sequence[str]) -> None:
  """Writes a TSV with header `sample<TAB>label`."""
  with open(path, 'w') as f:
    f.write('sample\tlabel\n')
    f.writelines(f'{s}\t{y}\n' for s, y in zip(samples, labels, strict=True))


def write_cohort(directory: str, dosage_NxS: np.ndarray, variants: Variants,
                 samples: Sequence[str], labels: Sequence[str], classes: Sequence[str], *,
                 emb_NxGxC: np.ndarray | None = None, prefix: str = 'synthetic',
                 formats: Sequence[str] = ('h5', 'vcf', 'plink', 'labels')) -> list[str]:
  """Writes any cohort (synthetic, baseline, real subset) in the chosen formats.

  Args:
    directory: output folder (created).
    dosage_NxS: (N, S) int8 ALT counts.
    variants: the variant table.
    samples, labels: N IDs and label strings.
    classes: the class names; label_ids index into them.
    emb_NxGxC: optional embedding stored in the HDF5 file.
    prefix: file name stem.
    formats: keys of `FORMATS`.

  Returns:
    The paths written.
  """
  os.makedirs(directory, exist_ok=True)
  lookup = {c: i for i, c in enumerate(classes)}
  label_ids = np.array([lookup[y] for y in labels], np.int32)
  args = dict(directory=directory, prefix=prefix, dosage=dosage_NxS, variants=variants,
              samples=samples, labels=labels, label_ids=label_ids, classes=classes,
              emb=emb_NxGxC)
  paths = []
  for name in formats:
    paths += FORMATS[name](**args)
  return paths


def _h5(directory, prefix, dosage, variants, samples, labels, label_ids, classes, emb):
  path = os.path.join(directory, prefix + '.h5')
  with H5Cohort(path, dosage.shape[0], dosage.shape[1],
                None if emb is None else emb.shape[1:], classes) as f:
    f.write_rows(0, dosage, emb)
    f.write_samples(samples, labels, label_ids)
  return [path]


def _vcf(directory, prefix, dosage, variants, samples, **_):
  path = os.path.join(directory, prefix + '.vcf.gz')
  write_vcf(path, dosage, variants, samples)
  return [path]


def _plink(directory, prefix, dosage, variants, samples, **_):
  stem = os.path.join(directory, prefix)
  write_plink(stem, dosage, variants, samples)
  return [stem + ext for ext in ('.bed', '.bim', '.fam')]


def _labels(directory, prefix, samples, labels, **_):
  path = os.path.join(directory, prefix + '.labels.tsv')
  write_labels(path, samples, labels)
  return [path]


FORMATS = {'h5': _h5, 'vcf': _vcf, 'plink': _plink, 'labels': _labels}
