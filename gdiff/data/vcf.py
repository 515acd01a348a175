"""The VCF reader of ingest: VCF, VCF.gz, or BCF through bcftools, streamed in chunks.

`VcfSource(path).chunks(chunk_variants)` yields `gdiff.data.qc.RawChunk`s read
through scikit-allel (`allel.iter_vcf_chunks`); BCF is piped through
`bcftools view -Ov` when bcftools is on PATH. Every line is checked on the way
in (field count, POS, a GT in FORMAT) so that a malformed line is reported with
its line number instead of being misread. A bgzipped file must end with the
BGZF end-of-file block, as htslib checks: a download cut at a block boundary is
refused. Genotype calls are read by the rules of `gdiff.data.genotypes`; each
call also gives its first haplotype's allele (`hap0`).

`chunks(region=...)` reads one genomic region through tabix (or `bcftools view
-r`), for `gdiff.data.ingest_parallel`.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import shutil
import subprocess
import zlib
from collections.abc import Iterator

import numpy as np

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
    contig = contig_line(text)
    if contig is not None:
      self.contigs.append(contig)

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


def contig_line(text: str) -> tuple[str, int] | None:
  """(ID, length) of a '##contig=<ID=...,length=...>' header line; None for other lines."""
  if not text.startswith('##contig=<'):
    return None
  name, length = _CONTIG_ID.search(text), _CONTIG_LENGTH.search(text)
  return (name[1], int(length[1])) if name and length else None


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
    haploid_calls_S=calls.haploid_calls_S,
    hap0_SxN=calls.hap0_SxN,
    unphased_het_S=calls.unphased_het_S,
    bad_calls=calls.bad_calls,
  )
