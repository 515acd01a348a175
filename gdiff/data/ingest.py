"""Streaming ingest of genotype files into the cohort's HDF5 shards.

Sources (table `SOURCES`), each read in blocks of `chunk_variants` variants so
that memory depends on the chunk and shard sizes, not on the file length:
  vcf    VCF or VCF.gz through scikit-allel (`allel.iter_vcf_chunks`); BCF is
         piped through `bcftools view -Ov` when bcftools is on PATH. Every line
         is checked on the way in (field count, POS, a GT in FORMAT) so that a
         malformed line is reported with its line number instead of being
         misread. A bgzipped file must end with the BGZF end-of-file block, as
         htslib checks: a download cut at a block boundary is refused.
  plink  .bed/.bim/.fam through bed-reader; ALT = A1 (the allele bed-reader
         counts), REF = A2, as plink2 writes them from a VCF. The .bed size must
         match the .bim and .fam.

Genotype calls and chromosome names are read by the rules of
`gdiff.data.genotypes` (every call checked; haploid calls on X, Y and MT drop
their record under the QC reason 'haploid'; '22' with 'chr22' refused).

Phase. A VCF call also gives its first haplotype's allele (`hap0`), stored in
every shard next to the dosage; the statistics say `phased: true` only when no
heterozygous call of a kept SNP has unknown phase ('0/1', a filled call; see
`gdiff.data.qc`) and `unphased_het_calls` how many did. PLINK input carries no
phase: `phased: false`, its heterozygous calls stored as 1|0.

Each chunk goes through `gdiff.data.qc.qc_chunk`; kept SNPs are written as
shards of `shard_variants` variants with `gdiff.data.cohort.write_shard`
(REF/ALT upper-cased; a missing ID '.' becomes CHROM:POS:REF:ALT).
Input must be sorted by position within each chromosome, with each chromosome
in one block.

`ingest` runs in this process; `gdiff.data.ingest_parallel` runs
`ingest_chunks` over genomic regions (`VcfSource.chunks(region=...)`,
`PlinkSource.slice`) in worker processes.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import logging
import os
import re
import shutil
import subprocess
import time
import zlib
from collections.abc import Iterator

import numpy as np
import tqdm

from gdiff.data import cohort as cohort_lib
from gdiff.data import genotypes
from gdiff.data import qc as qc_lib
from gdiff.errors import InputError, where

_GZIP_MAGIC = b'\x1f\x8b'
# The empty BGZF block that ends every bgzipped file (SAM/BAM spec 4.1.2; htslib checks it).
_BGZF_EOF = bytes.fromhex('1f8b08040000000000ff0600424302001b0003000000000000000000')
_VCF_FIELDS = [
  'variants/CHROM',
  'variants/POS',
  'variants/ID',
  'variants/REF',
  'variants/ALT',
  'variants/numalt',
  'calldata/GT',
]
# GT is read as text, its first 4 bytes per call: '0/1' needs 3, a 4th shows a longer call.
_GT_TYPES = {'calldata/GT': 'S4'}
_GT_NUMBERS = {'calldata/GT': 1}
_READ_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile, OSError, UnicodeDecodeError)


def check_bgzf_eof(path: str) -> None:
  """Refuses a bgzipped file that lacks the BGZF end-of-file block (truncated)."""
  with open(path, 'rb') as f:
    head = f.read(16)
    if not (head[:4] == b'\x1f\x8b\x08\x04' and head[12:14] == b'BC'):
      return  # not BGZF (plain gzip is checked by its own CRC and length)
    f.seek(0, os.SEEK_END)
    if f.tell() >= len(_BGZF_EOF):
      f.seek(-len(_BGZF_EOF), os.SEEK_END)
      if f.read() == _BGZF_EOF:
        return
  raise InputError(
    f'{path}: no BGZF end-of-file block, so the file is truncated (an '
    f'interrupted download or copy?); get the whole file again'
  )


# ------------------------------------------------------------------ VCF


class _CheckedLines(io.RawIOBase):
  """A byte stream that checks VCF lines as scikit-allel reads them.

  scikit-allel tolerates malformed lines silently (missing fields become
  missing calls); this wrapper raises InputError with the line number.
  """

  def __init__(self, raw, path: str):
    super().__init__()
    self._raw = raw
    self._path = path  # as shown in messages (file, or file [region])
    self._line = 0
    self._tail = b''
    self._num_fields = None
    self.samples: list[str] | None = None
    self.header_lines = 0  # lines up to and including #CHROM
    self.contigs: list[tuple[str, int]] = []  # ##contig ID and length, in header order
    self.reference: str | None = None  # ##reference

  def readable(self) -> bool:
    return True

  @property
  def line(self) -> int:
    """Lines checked so far (the reader is at most a buffer ahead of the parser)."""
    return self._line

  def readinto(self, buffer) -> int:
    try:
      data = self._raw.read(len(buffer))
    except _READ_ERRORS as e:
      raise InputError(f'{self._path}: cannot read (truncated or corrupt file?): {e}') from e
    if data:
      self._check(data, final=False)
    else:
      self._check(b'', final=True)
    buffer[: len(data)] = data
    return len(data)

  def _check(self, data: bytes, final: bool) -> None:
    lines = (self._tail + data).split(b'\n')
    self._tail = b'' if final else lines.pop()
    for line in lines:
      self._line += 1
      if line:
        self._check_line(line.rstrip(b'\r'))
    if final and self._num_fields is None:
      if self._line <= 1 and not lines[0]:
        raise InputError(f'{self._path}: empty file')
      raise InputError(f'{self._path}: no #CHROM header line (not a VCF?)')

  def _meta(self, line: bytes) -> None:
    """Keeps the ##contig lines that give a length, and ##reference."""
    text = line.decode(errors='replace')
    if text.startswith('##reference='):
      self.reference = text[len('##reference=') :]
    if text.startswith('##contig=<'):
      name, length = _CONTIG_ID.search(text), _CONTIG_LENGTH.search(text)
      if name and length:
        self.contigs.append((name[1], int(length[1])))

  def _check_line(self, line: bytes) -> None:
    at = where(self._path, self._line)
    if self._line == 1 and not line.startswith(b'##fileformat=VCF'):
      raise InputError(f'{at}: not a VCF (the first line must start with ##fileformat=VCF)')
    if line.startswith(b'##'):
      self._meta(line)
      return
    if line.startswith(b'#'):
      fields = line.decode(errors='replace').split('\t')
      if fields[:1] != ['#CHROM'] or len(fields) < 8:
        raise InputError(f'{at}: malformed header line (expected #CHROM POS ID REF ALT ...)')
      if len(fields) < 10:
        raise InputError(f'{at}: the VCF has no samples (no FORMAT and sample columns)')
      self._num_fields = len(fields)
      self.samples = fields[9:]
      self.header_lines = self._line
      return
    if self._num_fields is None:
      raise InputError(f'{at}: data line before the #CHROM header line')
    count = line.count(b'\t') + 1
    if count != self._num_fields:
      raise InputError(
        f'{at}: {count} tab-separated fields, expected {self._num_fields} '
        f'(9 + {self._num_fields - 9} samples)'
      )
    tabs = [line.find(b'\t')]  # the first 9 fields, without copying the samples' part
    for _ in range(8):
      tabs.append(line.find(b'\t', tabs[-1] + 1))
    pos = line[tabs[0] + 1 : tabs[1]]
    if not pos.isdigit() or int(pos) < 1:
      raise InputError(f'{at}: POS {pos.decode(errors="replace")!r} is not a positive integer')
    fmt = line[tabs[7] + 1 : tabs[8]]
    if fmt[:3] != b'GT:' and fmt != b'GT' and b'GT' not in fmt.split(b':'):
      raise InputError(
        f'{at}: FORMAT {fmt.decode(errors="replace")!r} has no GT field (gdiff '
        f'reads the genotype calls; export them with GT)'
      )


# ##contig=<ID=...,length=...>: each key at the start of an attribute, in any order.
_CONTIG_ID = re.compile(r'[<,]ID=([^,>]+)')
_CONTIG_LENGTH = re.compile(r'[<,]length=(\d+)[,>]')


def _is_bcf(path: str) -> bool:
  if path.endswith('.bcf'):
    return True
  with open(path, 'rb') as f:
    head = f.read(2)
  if head != _GZIP_MAGIC:
    return False
  try:
    with gzip.open(path, 'rb') as f:
      return f.read(3) == b'BCF'
  except _READ_ERRORS:
    return False


class VcfSource:
  """A VCF, VCF.gz or (through bcftools) BCF file."""

  kind = 'vcf'

  def __init__(self, path: str):
    if not os.path.isfile(path):
      raise InputError(f'data.vcf: no such file: {path}')
    if not os.path.getsize(path):
      raise InputError(f'{path}: empty file')
    check_bgzf_eof(path)
    self.path = path
    self.bcf = _is_bcf(path)
    if self.bcf and shutil.which('bcftools') is None:
      raise InputError(f'{path}: BCF needs bcftools on PATH (or convert it to VCF.gz)')
    self.num_variants = None
    self.contigs: list[tuple[str, int]] = []  # the header's ##contig (ID, length)
    self.reference: str | None = None  # the header's ##reference
    self.samples = np.asarray(self._read_samples(), dtype=object).astype(str)

  def _open(self, region: str | None = None, index: str | None = None):
    """Returns (byte stream, process or None); `region` needs the file's `index`."""
    if region is not None:
      target = self.path if index is None else f'{self.path}##idx##{index}'
      cmd = (
        ['bcftools', 'view', '-Ov', '-r', region, target]
        if self.bcf
        else ['tabix', '-h', target, region]
      )
      proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
      return proc.stdout, proc
    if self.bcf:
      proc = subprocess.Popen(
        ['bcftools', 'view', '-Ov', self.path], stdout=subprocess.PIPE, stderr=subprocess.PIPE
      )
      return proc.stdout, proc
    with open(self.path, 'rb') as f:
      gz = f.read(2) == _GZIP_MAGIC
    return (gzip.open(self.path, 'rb') if gz else open(self.path, 'rb')), None

  def _close(self, stream, proc, complete: bool) -> None:
    stream.close()
    if proc is None:
      return
    if not complete:
      proc.kill()
    _, err = proc.communicate()
    if complete and proc.returncode != 0:
      msg = err.decode(errors='replace').strip().splitlines()
      raise InputError(
        f'{self.path}: {" ".join(proc.args[:2])} failed: {msg[0] if msg else proc.returncode}'
      )

  def _read_samples(self) -> list[str]:
    stream, proc = self._open()
    checked = _CheckedLines(stream, self.path)
    try:
      while checked.samples is None:
        block = bytearray(1 << 16)
        if not checked.readinto(block):
          break
    finally:
      self._close(stream, proc, complete=False)
    self.contigs, self.reference = checked.contigs, checked.reference
    return checked.samples

  def chunks(
    self,
    chunk_variants: int,
    region: str | None = None,
    index: str | None = None,
    bad_calls: str = 'error',
  ) -> Iterator[qc_lib.RawChunk]:
    """Yields RawChunks of up to `chunk_variants` variants.

    Args:
      chunk_variants: variants per chunk.
      region: 'CHROM:BEG-END' (1-based, inclusive): only records whose POS lies
        in it, read through `tabix` (VCF.gz) or `bcftools view -r` (BCF); line
        numbers in messages then count lines of that region's output, and a bad
        call is located by CHROM:POS.
      index: the .tbi/.csi index when it is not next to the file.
      bad_calls: `data.qc.bad_calls` (see `gdiff.data.genotypes`).
    """
    import allel  # heavy import

    stream, proc = self._open(region, index)
    name = self.path if region is None else f'{self.path} [{region}]'
    checked = _CheckedLines(stream, name)
    complete = False
    try:
      try:
        # With a stream scikit-allel does not run tabix itself, but `region` still keeps
        # only records whose POS is in it (tabix also returns records that overlap it).
        _, samples, _, it = allel.iter_vcf_chunks(
          io.BufferedReader(checked, buffer_size=1 << 20),
          fields=_VCF_FIELDS,
          alt_number=1,
          types=_GT_TYPES,
          numbers=_GT_NUMBERS,
          chunk_length=chunk_variants,
          buffer_size=1 << 20,
          region=region,
        )
      except (RuntimeError, ValueError) as e:
        raise InputError(f'{name}: cannot parse the VCF header: {e}') from e
      if list(samples) != list(self.samples):
        raise InputError(f'{self.path}: samples changed while reading')
      records = 0
      while True:
        try:
          chunk, _, _, _ = next(it)
        except StopIteration:
          break
        except (RuntimeError, ValueError, IndexError) as e:
          raise InputError(
            f'{where(name, checked.line)}: cannot parse the VCF near this line: {e}'
          ) from e
        if 'calldata/GT' not in chunk:
          raise InputError(f'{self.path}: no GT genotype field in FORMAT')
        first_line = None if region else checked.header_lines + records + 1
        records += len(chunk['variants/POS'])
        raw = _vcf_chunk(chunk, name, first_line, self.samples, bad_calls)
        del chunk  # the GT text, 4 bytes a call, is not kept while QC runs
        yield raw
      complete = True
    finally:
      self._close(stream, proc, complete)


def _vcf_chunk(
  chunk: dict, path: str, first_line: int | None, samples: np.ndarray, bad_calls: str
) -> qc_lib.RawChunk:
  chrom = chunk['variants/CHROM'].astype(str)
  pos = chunk['variants/POS'].astype(np.int64)
  numalt = chunk['variants/numalt'].astype(np.int64)
  calls = genotypes.decode_gt(
    chunk['calldata/GT'], numalt, chrom, pos, path, first_line, samples, bad_calls
  )
  return qc_lib.RawChunk(
    chrom=chrom,
    pos=pos,
    id=chunk['variants/ID'].astype(str),
    ref=chunk['variants/REF'].astype(str),
    alt=chunk['variants/ALT'].astype(str),
    multiallelic=numalt > 1,
    dosage_SxN=calls.dosage_SxN,
    haploid=calls.haploid_S,
    hap0_SxN=calls.hap0_SxN,
    unphased_het_S=calls.unphased_het_S,
    bad_calls=calls.bad_calls,
  )


# ------------------------------------------------------------------ PLINK


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


class PlinkSource:
  """A PLINK 1 binary fileset PREFIX.bed/.bim/.fam."""

  kind = 'plink'

  def __init__(self, prefix: str):
    if prefix.endswith(('.bed', '.bim', '.fam')):
      prefix = prefix[:-4]
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

  @property
  def chrom(self) -> np.ndarray:
    return self._chrom

  @property
  def pos(self) -> np.ndarray:
    return self._pos

  def slice(self, start: int, stop: int) -> PlinkSource:
    """The variants [start, stop) as a source of their own (small to pickle)."""
    part = object.__new__(PlinkSource)
    part.__dict__.update(self.__dict__)
    for name in ('_chrom', '_id', '_pos', '_a1', '_a2'):
      setattr(part, name, getattr(self, name)[start:stop].copy())
    part.num_variants = stop - start
    part._offset = self._offset + start
    return part

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


SOURCES = {'vcf': VcfSource, 'plink': PlinkSource}


def open_source(kind: str, path: str):
  """Opens a genotype source by kind ('vcf' or 'plink'); reads only its sample list."""
  return SOURCES[kind](path)


# ------------------------------------------------------------------ ingest


@dataclasses.dataclass
class _Order:
  """Checks that variants come sorted by position within contiguous chromosomes."""

  path: str
  chrom: str | None = None
  pos: int = 0
  seen: set = dataclasses.field(default_factory=set)
  names: dict = dataclasses.field(default_factory=dict)  # chrom_key -> name as written

  def check(self, chunk: qc_lib.RawChunk) -> None:
    if not len(chunk):
      return
    chrom, pos = chunk.chrom, chunk.pos
    prev_chrom = np.concatenate([[self.chrom], chrom[:-1]])
    prev_pos = np.concatenate([[self.pos], pos[:-1]])
    same = chrom == prev_chrom
    bad = np.flatnonzero(same & (pos < prev_pos))
    if len(bad):
      i = bad[0]
      raise InputError(
        f'{self.path}: not sorted: {chrom[i]}:{pos[i]} after {chrom[i]}:'
        f'{prev_pos[i]} (sort it, e.g. bcftools sort)'
      )
    for i in np.flatnonzero(~same):
      if chrom[i] in self.seen:
        raise InputError(
          f'{self.path}: chromosome {chrom[i]} appears in two separate blocks '
          f'(sort it, e.g. bcftools sort)'
        )
      self.seen.add(str(chrom[i]))
      genotypes.check_contig_names([str(chrom[i])], self.path, self.names)
    self.chrom, self.pos = str(chrom[-1]), int(pos[-1])


def _kept_variants(chunk: qc_lib.RawChunk, keep: np.ndarray) -> cohort_lib.Variants:
  chrom, pos = chunk.chrom[keep], chunk.pos[keep]
  ref, alt = np.char.upper(chunk.ref[keep]), np.char.upper(chunk.alt[keep])
  ids = chunk.id[keep].astype(object)
  unnamed = np.flatnonzero(np.isin(ids, ['', '.']))  # later stages and exports want IDs
  ids[unnamed] = [f'{chrom[i]}:{pos[i]}:{ref[i]}:{alt[i]}' for i in unnamed]
  return cohort_lib.Variants(chrom=chrom, pos=pos, id=ids.astype(str), ref=ref, alt=alt)


class _ShardWriter:
  """Fills preallocated (N, shard_variants) buffers (dosage, hap0); writes a shard when full.

  Memory: the buffers plus the copies `write_shard` makes, about
  4 x N x shard_variants bytes, whatever the file length.
  """

  def __init__(self, out_dir: str, shard_variants: int, num_samples: int):
    self.out_dir = out_dir
    self.shard_variants = shard_variants
    self._buffer_NxS = np.empty((num_samples, shard_variants), np.int8)
    self._hap0_NxS = np.empty((num_samples, shard_variants), np.int8)
    self._variants: list[cohort_lib.Variants] = []
    self._count = 0
    self.shards: list[dict] = []
    os.makedirs(os.path.join(out_dir, cohort_lib.SHARD_DIR), exist_ok=True)

  def add(
    self, variants: cohort_lib.Variants, dosage_KxN: np.ndarray, hap0_KxN: np.ndarray
  ) -> None:
    done = 0
    while done < len(variants):
      take = min(len(variants) - done, self.shard_variants - self._count)
      self._buffer_NxS[:, self._count : self._count + take] = dosage_KxN[done : done + take].T
      self._hap0_NxS[:, self._count : self._count + take] = hap0_KxN[done : done + take].T
      self._variants.append(variants.take(np.s_[done : done + take]))
      self._count += take
      done += take
      if self._count == self.shard_variants:
        self._write()

  def _write(self) -> None:
    path = cohort_lib.shard_path(self.out_dir, len(self.shards))
    cohort_lib.write_shard(
      path,
      cohort_lib.Variants.concatenate(self._variants),
      self._buffer_NxS[:, : self._count],
      self._hap0_NxS[:, : self._count],
    )
    self.shards.append({'file': os.path.relpath(path, self.out_dir), 'variants': self._count})
    self._variants, self._count = [], 0

  def close(self) -> None:
    if self._count:
      self._write()


def ingest_chunks(
  chunks: Iterator[qc_lib.RawChunk],
  path: str,
  out_dir: str,
  num_samples: int,
  shard_variants: int,
  qc_cfg,
  hwe_groups_N: np.ndarray | None = None,
  progress=None,
) -> dict:
  """QC and shard writing for one stream of chunks (the whole file, or one region).

  Args:
    chunks: RawChunks in file order.
    path: the file, for messages.
    out_dir: shards go to `out_dir/shards/shard-KKKKK.h5`, numbered from 0.
    num_samples: N.
    shard_variants: kept variants per shard.
    qc_cfg: the `data.qc` section.
    hwe_groups_N: (N,) int sample groups for the HWE test (see `qc.qc_chunk`).
    progress: a tqdm bar to update, or None.

  Returns:
    variants_read, variants_kept, dropped (per reason), bad_calls (calls read as
    missing per reason, see `gdiff.data.genotypes`), missing_filled, phased,
    unphased_het_calls (see the module docstring), kept_per_chromosome (in
    file order), shards ([{file, variants}]).
  """
  order = _Order(path)
  writer = _ShardWriter(out_dir, shard_variants, num_samples)
  dropped = dict.fromkeys(qc_lib.REASONS, 0)
  bad_calls = dict.fromkeys(genotypes.BAD_CALL_REASONS, 0)
  read = kept = filled = unphased = 0
  phase_read = True  # every chunk came with phase (not PLINK)
  per_chrom: dict[str, int] = {}
  previous = None
  for chunk in chunks:
    order.check(chunk)
    result = qc_lib.qc_chunk(chunk, qc_cfg, previous, hwe_groups_N)
    previous = result.last_snp
    read += len(chunk)
    kept += int(result.keep.sum())
    filled += result.missing_filled
    unphased += result.unphased_het_calls
    phase_read &= chunk.hap0_SxN is not None
    for reason, count in result.dropped.items():
      dropped[reason] += count
    for reason, count in chunk.bad_calls.items():
      bad_calls[reason] += count
    variants = _kept_variants(chunk, result.keep)
    for c, n in zip(*np.unique(variants.chrom, return_counts=True)):
      per_chrom[str(c)] = per_chrom.get(str(c), 0) + int(n)
    writer.add(variants, result.dosage_SxK, result.hap0_SxK)
    if progress is not None:
      progress.update(len(chunk))
  writer.close()
  return {
    'variants_read': read,
    'variants_kept': kept,
    'dropped': dropped,
    'bad_calls': bad_calls,
    'missing_filled': filled,
    'phased': phase_read and unphased == 0,
    'unphased_het_calls': unphased,
    'kept_per_chromosome': per_chrom,
    'shards': writer.shards,
  }


def ingest(
  source,
  out_dir: str,
  chunk_variants: int,
  shard_variants: int,
  qc_cfg,
  hwe_groups_N: np.ndarray | None = None,
) -> dict:
  """Streams `source` through QC into `out_dir/shards/` in one process.

  `gdiff.data.ingest_parallel.ingest` does the same over genomic regions in
  worker processes, with the same result.

  Args:
    source: a VcfSource or PlinkSource (see `open_source`).
    out_dir: the cohort folder being written.
    chunk_variants: variants read per chunk.
    shard_variants: kept variants per shard.
    qc_cfg: the `data.qc` section.
    hwe_groups_N: (N,) int sample groups for the HWE test (see `qc.qc_chunk`).

  Returns:
    Statistics for the manifest: variants read/kept/dropped per reason, missing
    calls filled, phased and unphased_het_calls, kept SNPs per chromosome,
    shards, wall time.
  """
  start = time.time()
  progress = tqdm.tqdm(
    total=source.num_variants, unit='variants', desc='ingest', disable=None, leave=False
  )
  with progress:
    stats = ingest_chunks(
      source.chunks(chunk_variants, bad_calls=qc_cfg.bad_calls),
      source.path,
      out_dir,
      len(source.samples),
      shard_variants,
      qc_cfg,
      hwe_groups_N,
      progress,
    )
  wall = time.time() - start
  log_stats(source.path, stats, wall)
  return dict(stats, ingest_wall_s=round(wall, 3))


def log_stats(path: str, stats: dict, wall: float, how: str = '') -> None:
  """One logging line summarising an ingest."""
  logging.info(
    'ingest: %s: %d variants read, %d kept, dropped %s, %d missing calls filled, %s (%.1f s%s)',
    path,
    stats['variants_read'],
    stats['variants_kept'],
    stats['dropped'],
    stats['missing_filled'],
    'phased'
    if stats['phased']
    else f'unphased (heterozygous calls of unknown phase: {stats["unphased_het_calls"]})',
    wall,
    how,
  )
