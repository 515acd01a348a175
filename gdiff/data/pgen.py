"""The PGEN reader of ingest: plink2's .pgen/.pvar/.psam through pgenlib (plink2's own reader).

Variants come from the .pvar: its '#CHROM POS ID REF ALT ...' columns by name
(a headerless .pvar has the .bim's column order), and its '##contig' header
lines with a length, kept for the synthetic VCF as a VCF's are. Samples are the
IID column of the .psam ('#FID IID ...' or '#IID ...'; without a header line,
the .fam's second column). Multiallelic records (ALT with a comma) are dropped
by QC. A compressed .pvar.zst is refused: `plink2 --pfile P vzs --make-pgen
--out P2` writes it plain.

Calls are read as allele codes per haplotype with their phase
(`read_alleles_and_phasepresent_range`): the dosage is the count of allele 1,
`hap0` the first haplotype's allele, a heterozygous call without stored phase
counts as of unknown phase (as '0/1' in a VCF), and a call with a missing
allele is missing. plink2 stores males' X calls as homozygous diploid, and
they are read so (see `data.sex_chromosomes` in `gdiff.data.qc`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from gdiff.data import plink
from gdiff.data import qc as qc_lib
from gdiff.data import vcf as vcf_lib
from gdiff.errors import InputError, where

EXTENSIONS = ('.pgen', '.pvar', '.psam')
_PVAR_COLUMNS = ('#CHROM', 'POS', 'ID', 'REF', 'ALT')
_BIM_ORDER = {'#CHROM': 0, 'ID': 1, 'POS': 3, 'ALT': 4, 'REF': 5}  # a headerless .pvar
_MISSING = -9  # pgenlib's code of a missing allele


def prefix_of(path: str) -> str:
  """'P.pgen', 'P.pvar', 'P.psam' or 'P' give 'P'."""
  return path[:-5] if path.endswith(EXTENSIONS) else path


def _lines(path: str) -> Iterator[tuple[int, str]]:
  with open(path, 'rb') as f:
    for i, raw in enumerate(f, 1):
      try:
        yield i, raw.decode('utf-8').rstrip('\r\n')
      except UnicodeDecodeError as e:
        raise InputError(f'{path} is not UTF-8 (line {i}): re-save it as UTF-8') from e


def read_pvar(path: str) -> tuple[dict[str, list[str]], list[tuple[str, int]]]:
  """({column: values} of CHROM, POS, ID, REF, ALT; [(contig, length)] of the header)."""
  columns, contigs = None, []
  rows: dict[str, list[str]] = {name: [] for name in _PVAR_COLUMNS}
  for i, line in _lines(path):
    if line.startswith('##'):
      contig = vcf_lib.contig_line(line)
      if contig is not None:
        contigs.append(contig)
      continue
    if not line.strip():
      continue
    fields = line.split('\t') if columns or line.startswith('#') else line.split()
    if columns is None:
      if line.startswith('#'):
        missing = [c for c in _PVAR_COLUMNS if c not in fields]
        if missing:
          raise InputError(f'{where(path, i)}: header line lacks {", ".join(missing)}')
        columns = {name: fields.index(name) for name in _PVAR_COLUMNS}
        width = len(fields)
        continue
      columns, width = _BIM_ORDER, 6
    if len(fields) < width:
      raise InputError(f'{where(path, i)}: {len(fields)} fields, expected {width}')
    for name, k in columns.items():
      rows[name].append(fields[k])
    if not rows['POS'][-1].isdigit():
      raise InputError(f'{where(path, i)}: POS {rows["POS"][-1]!r} is not an integer')
  return rows, contigs


def read_psam(path: str) -> list[str]:
  """Sample IDs (IID) of a .psam (or a .fam-like file without a header line)."""
  samples, iid = [], None
  for i, line in _lines(path):
    fields = line.split()
    if not fields:
      continue
    if iid is None:
      if fields[0] in ('#FID', '#IID'):
        if 'IID' not in fields and fields[0] != '#IID':
          raise InputError(f'{where(path, i)}: header line has no IID column')
        iid = 0 if fields[0] == '#IID' else fields.index('IID')
        continue
      iid = 1  # .fam order: FID IID ...
    if len(fields) <= iid:
      raise InputError(f'{where(path, i)}: {len(fields)} fields, the sample ID is field {iid + 1}')
    samples.append(fields[iid])
  return samples


class PgenSource(plink.IndexedSource):
  """A plink2 fileset PREFIX.pgen/.pvar/.psam."""

  kind = 'pgen'
  sliceable = True  # `gdiff.data.ingest_parallel` cuts it by variant index
  _PER_VARIANT = ('_chrom', '_pos', '_id', '_ref', '_alt', '_multiallelic')

  def __init__(self, path: str):
    prefix = prefix_of(path)
    self.path = prefix
    if not os.path.isfile(prefix + '.pvar') and os.path.isfile(prefix + '.pvar.zst'):
      raise InputError(
        f'{prefix}.pvar.zst: a compressed .pvar is not read; write it plain: plink2 --pfile '
        f'{prefix} vzs --make-pgen --out NEW'
      )
    for ext in EXTENSIONS:
      if not os.path.isfile(prefix + ext):
        raise InputError(f'data.pgen: no such file: {prefix + ext}')
    self.samples = np.asarray(read_psam(prefix + '.psam'), dtype=object).astype(str)
    rows, self.contigs = read_pvar(prefix + '.pvar')
    self.reference = None
    self.num_variants = len(rows['POS'])
    self._offset = 0  # index of variant 0 in the .pgen (see `slice`)
    self._pgen_variants = self.num_variants
    self._chrom = np.asarray(rows['#CHROM'], dtype=object).astype(str)
    self._pos = np.asarray(rows['POS'], dtype=np.int64)
    self._id = np.asarray(rows['ID'], dtype=object).astype(str)
    self._ref = np.asarray(rows['REF'], dtype=object).astype(str)
    alt = np.asarray(rows['ALT'], dtype=object).astype(str)
    self._multiallelic = np.char.find(alt, ',') >= 0
    self._alt = np.array([a.split(',')[0] for a in alt], dtype=str) if len(alt) else alt
    with self._open():  # checks the counts against the .pgen header
      pass

  def _open(self):
    import pgenlib  # heavy import

    try:
      return pgenlib.PgenReader(
        os.fsencode(self.path + '.pgen'),
        raw_sample_ct=len(self.samples),
        variant_ct=self._pgen_variants,
      )
    except RuntimeError as e:
      raise InputError(
        f'{self.path}.pgen: cannot open with {len(self.samples)} samples (.psam) and '
        f'{self.num_variants} variants (.pvar): {str(e).strip()}'
      ) from e

  def chunks(self, chunk_variants: int, bad_calls: str = 'error') -> Iterator[qc_lib.RawChunk]:
    """Yields RawChunks of up to `chunk_variants` variants (`bad_calls`: nothing to check)."""
    n = len(self.samples)
    with self._open() as reader:
      for start in range(0, self.num_variants, chunk_variants):
        stop = min(start + chunk_variants, self.num_variants)
        alleles_Sx2N = np.empty((stop - start, 2 * n), np.int32)
        phased_SxN = np.empty((stop - start, n), np.uint8)
        try:
          reader.read_alleles_and_phasepresent_range(
            self._offset + start, self._offset + stop, alleles_Sx2N, phased_SxN
          )
        except RuntimeError as e:
          raise InputError(
            f'{self.path}.pgen: cannot read variants {start}-{stop}: {str(e).strip()}'
          ) from e
        first, second = alleles_Sx2N[:, 0::2], alleles_Sx2N[:, 1::2]
        missing = (first == _MISSING) | (second == _MISSING)
        dosage = ((first == 1).astype(np.int8) + (second == 1)).astype(np.int8)
        dosage[missing] = -1
        hap0 = np.where(missing, 0, first == 1).astype(np.int8)
        unphased = (first != second) & ~missing & (phased_SxN == 0)
        s = np.s_[start:stop]
        yield qc_lib.RawChunk(
          chrom=self._chrom[s],
          pos=self._pos[s],
          id=self._id[s],
          ref=self._ref[s],
          alt=self._alt[s],
          multiallelic=self._multiallelic[s],
          dosage_SxN=dosage,
          hap0_SxN=hap0,
          unphased_het_S=unphased.sum(axis=1).astype(np.int64),
        )
