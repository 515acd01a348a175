"""The PLINK 1 reader of ingest: a .bed/.bim/.fam fileset through bed-reader.

ALT = A1 (the allele bed-reader counts), REF = A2, as plink2 writes them from a
VCF. The .bed size must match the .bim and .fam. A .bed carries no phase
(`RawChunk.hap0_SxN` is None) and cannot mark a call haploid: plink stores
males' X calls as homozygous, and they are read so.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from gdiff.data import qc as qc_lib
from gdiff.errors import InputError, where


def _read_table(path: str, min_fields: int, what: str) -> list[list[str]]:
  rows = []
  with open(path, 'rb') as f:
    for i, raw in enumerate(f, 1):
      try:
        line = raw.decode('utf-8')
      except UnicodeDecodeError as e:
        raise InputError(f'{path} is not UTF-8 (line {i}): re-save it as UTF-8') from e
      fields = line.split()
      if not fields:
        continue
      if len(fields) < min_fields:
        raise InputError(
          f'{where(path, i)}: {len(fields)} fields, a {what} line needs {min_fields}'
        )
      rows.append(fields)
  return rows


def prefix_of(path: str) -> str:
  """'P.bed', 'P.bim', 'P.fam' or 'P' give 'P'."""
  return path[:-4] if path.endswith(('.bed', '.bim', '.fam')) else path


class IndexedSource:
  """A source whose variant table is read up front and whose calls are read by index
  (PLINK .bed, PGEN): `slice` is a copy of the table's rows and an offset into the file."""

  _PER_VARIANT: tuple[str, ...] = ()  # the per-variant arrays `slice` cuts

  @property
  def chrom(self) -> np.ndarray:
    return self._chrom

  @property
  def pos(self) -> np.ndarray:
    return self._pos

  def slice(self, start: int, stop: int):
    """The variants [start, stop) as a source of their own (small to pickle)."""
    part = object.__new__(type(self))
    part.__dict__.update(self.__dict__)
    for name in self._PER_VARIANT:
      setattr(part, name, getattr(self, name)[start:stop].copy())
    part.num_variants = stop - start
    part._offset = self._offset + start
    return part


class PlinkSource(IndexedSource):
  """A PLINK 1 binary fileset PREFIX.bed/.bim/.fam."""

  kind = 'plink'
  sliceable = True  # `gdiff.data.ingest_parallel` cuts it by variant index
  _PER_VARIANT = ('_chrom', '_id', '_pos', '_a1', '_a2')
  contigs: list[tuple[str, int]] = []  # a .bim has no contig lengths
  reference = None

  def __init__(self, prefix: str):
    prefix = prefix_of(prefix)
    self.path = prefix
    for ext in ('.bed', '.bim', '.fam'):
      if not os.path.isfile(prefix + ext):
        raise InputError(f'data.plink: no such file: {prefix + ext}')
    fam = _read_table(prefix + '.fam', 6, '.fam')
    bim = _read_table(prefix + '.bim', 6, '.bim')
    for i, row in enumerate(bim, 1):
      if not row[3].isdigit():
        raise InputError(f'{where(prefix + ".bim", i)}: position {row[3]!r} is not an integer')
    self.samples = np.array([r[1] for r in fam], dtype=object).astype(str)
    self.num_variants = len(bim)
    self._offset = 0  # index of variant 0 in the .bed (see `slice`)
    self._bed_variants = self.num_variants
    cols = list(zip(*bim)) if bim else [()] * 6
    self._chrom = np.array(cols[0], dtype=object).astype(str)
    self._id = np.array(cols[1], dtype=object).astype(str)
    self._pos = np.array(cols[3], dtype=np.int64)
    self._a1 = np.array(cols[4], dtype=object).astype(str)
    self._a2 = np.array(cols[5], dtype=object).astype(str)
    expected = 3 + self.num_variants * ((len(self.samples) + 3) // 4)
    size = os.path.getsize(prefix + '.bed')
    if size != expected:
      raise InputError(
        f'{prefix}.bed: {size} bytes, expected {expected} for '
        f'{len(self.samples)} samples x {self.num_variants} variants '
        f'(.fam/.bim do not match the .bed?)'
      )

  def chunks(self, chunk_variants: int, bad_calls: str = 'error') -> Iterator[qc_lib.RawChunk]:
    """Yields RawChunks of up to `chunk_variants` variants (`bad_calls`: nothing to check)."""
    from bed_reader import open_bed  # heavy import

    try:
      bed = open_bed(
        self.path + '.bed', iid_count=len(self.samples), sid_count=self._bed_variants, count_A1=True
      )
    except Exception as e:  # bed-reader raises several types for a bad file
      raise InputError(f'{self.path}.bed: cannot open: {e}') from e
    with bed:
      for start in range(0, self.num_variants, chunk_variants):
        stop = min(start + chunk_variants, self.num_variants)
        try:
          values = bed.read(
            index=np.s_[:, self._offset + start : self._offset + stop], dtype='int8', order='C'
          )
        except Exception as e:
          raise InputError(f'{self.path}.bed: cannot read variants {start}-{stop}: {e}') from e
        dosage = np.ascontiguousarray(values.T)
        dosage[dosage < 0] = -1
        s = np.s_[start:stop]
        yield qc_lib.RawChunk(
          chrom=self._chrom[s],
          pos=self._pos[s],
          id=self._id[s],
          ref=self._a2[s],
          alt=self._a1[s],
          multiallelic=np.zeros(stop - start, bool),
          dosage_SxN=dosage,
        )
