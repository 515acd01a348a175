"""Genotype files out: BGZF, VCF, PLINK 1 binary and the label TSV.

The one set of genotype writers: the simulated input cohort (`gdiff.data.simulate`)
and every exported cohort (`gdiff.export`: synthetic people, baselines) are written
here, and bcftools, tabix and plink2 read them back. Every writer is deterministic:
the same inputs give the same bytes with the same zlib (no timestamps; BGZF blocks of
a fixed input size, whatever the number of threads).

  BgzfWriter     blocked gzip, blocks compressed on threads (zlib releases the GIL)
  VcfWriter      VCFv4.2 (GT; INFO AC/AN/AF) from dosages (unphased) or haplotypes
                 (phased), with its tabix index (.tbi)
  write_vcf      a dosage matrix or HDF5 dataset as a VCF, streamed
  write_plink    .bed/.bim/.fam (A1 = ALT), streamed
  write_labels   TSV `sample<TAB>label`
  write_pheno    plink --pheno file (`#FID IID label`; 1/2 for case/control)
"""

from __future__ import annotations

import concurrent.futures
import functools
import os
import struct
import zlib
from collections.abc import Sequence

import numpy as np

from gdiff.data.cohort import Variants

BGZF_BLOCK = 0xFF00  # input bytes per BGZF block, as htslib's bgzip
_BGZF_EOF = bytes.fromhex('1f8b08040000000000ff0600424302001b0003000000000000000000')
# VCF text per block of records (each genotype takes 4 bytes).
VCF_BLOCK_BYTES = 1 << 24
# Unphased GT per dosage value (as uint8); everything else is missing.
_GT = np.full((256, 3), np.frombuffer(b'./.', np.uint8), np.uint8)
_GT[0], _GT[1], _GT[2] = (np.frombuffer(g, np.uint8) for g in (b'0/0', b'0/1', b'1/1'))


# --------------------------------------------------------------------------- BGZF


def _bgzf_block(data: bytes, level: int) -> bytes:
  compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
  payload = compressor.compress(data) + compressor.flush()
  header = struct.pack(
    '<4BI2BH2BHH', 0x1F, 0x8B, 8, 4, 0, 0, 0xFF, 6, ord('B'), ord('C'), 2, len(payload) + 25
  )
  return header + payload + struct.pack('<2I', zlib.crc32(data), len(data))


class BgzfWriter:
  """BGZF (blocked gzip) writer: what bgzip writes, readable by bcftools, tabix and plink2.

  Args:
    path: the output file.
    level: zlib compression level.
    threads: blocks compressed at once (default: all CPUs); the bytes do not depend on it.
  """

  def __init__(self, path: str, level: int = 6, threads: int | None = None):
    threads = threads or os.cpu_count() or 1
    self._file = open(path, 'wb')
    self._compress = functools.partial(_bgzf_block, level=level)
    self._pool = concurrent.futures.ThreadPoolExecutor(threads) if threads > 1 else None
    self._buffer = bytearray()
    self.tell = 0  # uncompressed bytes written so far
    self.block_sizes: list[int] = []  # compressed size of each block, in file order

  def write(self, data: bytes) -> None:
    self._buffer += data
    self.tell += len(data)
    full = len(self._buffer) // BGZF_BLOCK * BGZF_BLOCK
    if not full:
      return
    with memoryview(self._buffer) as view:
      blocks = [bytes(view[i : i + BGZF_BLOCK]) for i in range(0, full, BGZF_BLOCK)]
    del self._buffer[:full]
    mapper = self._pool.map if self._pool and len(blocks) > 1 else map
    for block in mapper(self._compress, blocks):
      self._file.write(block)
      self.block_sizes.append(len(block))

  def virtual_offsets(self, offsets: np.ndarray) -> np.ndarray:
    """BGZF virtual offsets (uint64) of uncompressed byte offsets (every block holds BGZF_BLOCK)."""
    starts = np.concatenate([[0], np.cumsum(self.block_sizes, dtype=np.uint64)]).astype(np.uint64)
    offsets = np.asarray(offsets, np.uint64)
    block = offsets // np.uint64(BGZF_BLOCK)
    return (starts[block] << np.uint64(16)) | (offsets % np.uint64(BGZF_BLOCK))

  def close(self) -> None:
    if self._buffer:
      block = self._compress(bytes(self._buffer))
      self._file.write(block)
      self.block_sizes.append(len(block))
      self._buffer.clear()
    self._file.write(_BGZF_EOF)
    self._file.close()
    if self._pool:
      self._pool.shutdown()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


# ---------------------------------------------------------------------------- VCF


def contig_lengths(
  variants: Variants, known: Sequence[tuple[str, int]] = ()
) -> list[tuple[str, int]]:
  """(chrom, length) of each chromosome, in file order: the header's contigs.

  The length is the input header's (`known`, e.g. the ingested VCF's ##contig lines) where
  it has one, else (or if smaller) the largest position seen.
  """
  chrom = np.asarray(variants.chrom).astype(str)
  pos = np.asarray(variants.pos, np.int64)
  lengths = {str(c): int(n) for c, n in known}
  _, first = np.unique(chrom, return_index=True)
  out = []
  for c in chrom[np.sort(first)]:
    largest = int(pos[chrom == c].max())
    out.append((str(c), max(lengths.get(str(c), 0), largest)))
  return out


_INFO = (
  '##INFO=<ID=AC,Number=A,Type=Integer,Description="Allele count in genotypes">',
  '##INFO=<ID=AN,Number=1,Type=Integer,Description="Total number of alleles in called genotypes">',
  '##INFO=<ID=AF,Number=A,Type=Float,Description="Allele frequency (AC / AN)">',
)


def vcf_header(
  samples: Sequence[str],
  contigs: Sequence[tuple[str, int]],
  source: str = 'gdiff',
  extra: Sequence[str] = (),
) -> bytes:
  """VCFv4.2 header: the source, `extra` ## lines, contigs (name, length), INFO, GT, #CHROM."""
  lines = ['##fileformat=VCFv4.2', f'##source={source}', *extra]
  lines += [f'##contig=<ID={c},length={length}>' for c, length in contigs]
  lines += [*_INFO, '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">']
  lines.append(
    '\t'.join(
      ['#CHROM', 'POS', 'ID', 'REF', 'ALT', 'QUAL', 'FILTER', 'INFO', 'FORMAT', *map(str, samples)]
    )
  )
  return ('\n'.join(lines) + '\n').encode()


def _info(gt_SxNx3: np.ndarray) -> list[str]:
  """INFO AC=..;AN=..;AF=.. of each variant from its genotypes' characters."""
  alleles = gt_SxNx3[:, :, 0::2]  # (S, N, 2) characters '0', '1' or '.'
  ac = (alleles == ord('1')).sum((1, 2))
  an = (alleles != ord('.')).sum((1, 2))
  return [f'AC={c};AN={a};AF={c / a:.6g}' if a else f'AC={c};AN=0;AF=.' for c, a in zip(ac, an)]


def _records(gt_SxNx3: np.ndarray, variants: Variants) -> bytes:
  """VCF body lines, one per variant, from each genotype's 3 characters."""
  s, n = gt_SxNx3.shape[:2]
  cells = np.empty((s, n, 4), np.uint8)
  cells[:, :, :3] = gt_SxNx3
  cells[:, :, 3] = ord('\t')
  cells[:, -1, 3] = ord('\n')
  rows = cells.reshape(s, 4 * n)
  v = variants
  prefixes = [
    f'{c}\t{p}\t{i}\t{r}\t{a}\t.\tPASS\t{info}\tGT\t'.encode()
    for c, p, i, r, a, info in zip(v.chrom, v.pos, v.id, v.ref, v.alt, _info(gt_SxNx3))
  ]
  return b''.join(p + r.tobytes() for p, r in zip(prefixes, rows))


def unphased_records(dosage_NxS: np.ndarray, variants: Variants) -> bytes:
  """Records with GT 0/0, 0/1, 1/1 from ALT counts (anything else: ./.)."""
  dosage_SxN = np.ascontiguousarray(np.asarray(dosage_NxS, np.int8).T).view(np.uint8)
  return _records(_GT[dosage_SxN], variants)


def phased_records(haplotypes_Sx2N: np.ndarray, variants: Variants) -> bytes:
  """Records with GT a|b from haplotypes in {0, 1} (columns 2i, 2i+1 = person i)."""
  haps = np.asarray(haplotypes_Sx2N)
  if haps.size and (haps.min() < 0 or haps.max() > 1):
    raise ValueError('phased_records: haplotype alleles must be 0 or 1')
  haps = haps.astype(np.uint8)
  gt = np.empty((haps.shape[0], haps.shape[1] // 2, 3), np.uint8)
  gt[:, :, 0] = haps[:, 0::2] + ord('0')
  gt[:, :, 1] = ord('|')
  gt[:, :, 2] = haps[:, 1::2] + ord('0')
  return _records(gt, variants)


def _reg2bin(beg: int, end: int) -> int:
  """The smallest UCSC bin holding [beg, end) (0-based), as htslib's hts_reg2bin."""
  end -= 1
  for shift, first in ((14, 4681), (17, 585), (20, 73), (23, 9), (26, 1)):
    if beg >> shift == end >> shift:
      return first + (beg >> shift)
  return 0


def tabix_index(chrom, beg, end, vstart, vend) -> bytes:
  """The (uncompressed) .tbi of a sorted VCF's records: their chromosome, 0-based [beg, end)
  and the BGZF virtual offsets of each record's start and end (the htslib TBI format)."""
  if len(end) and int(np.max(end)) > 1 << 29:
    raise ValueError('tabix_index: a .tbi cannot index positions beyond 2^29 (use a CSI index)')
  names = list(dict.fromkeys(np.asarray(chrom).astype(str)))
  ref_of = {c: i for i, c in enumerate(names)}
  refs = [{'bins': {}, 'linear': {}, 'n': 0, 'first': None, 'last': 0} for _ in names]
  for c, b, e, vs, ve in zip(np.asarray(chrom).astype(str), beg, end, vstart, vend):
    r = refs[ref_of[c]]
    b, e, vs, ve = int(b), int(e), int(vs), int(ve)
    chunks = r['bins'].setdefault(_reg2bin(b, e), [])
    if chunks and chunks[-1][1] == vs:  # contiguous with the bin's last chunk
      chunks[-1][1] = ve
    else:
      chunks.append([vs, ve])
    for window in range(b >> 14, ((e - 1) >> 14) + 1):
      r['linear'].setdefault(window, vs)
    r['n'] += 1
    r['first'] = vs if r['first'] is None else r['first']
    r['last'] = ve
  names_blob = b''.join(n.encode() + b'\0' for n in names)
  out = [b'TBI\1', struct.pack('<8i', len(names), 2, 1, 2, 0, ord('#'), 0, len(names_blob))]
  out.append(names_blob)
  for r in refs:
    bins = sorted(r['bins'].items())
    out.append(struct.pack('<i', len(bins) + 1))
    for bin_id, chunks in bins:
      out.append(struct.pack('<Ii', bin_id, len(chunks)))
      out += [struct.pack('<2Q', a, z) for a, z in chunks]
    # htslib's pseudo-bin: the reference's offset span and its record counts.
    out.append(struct.pack('<Ii4Q', 37450, 2, r['first'], r['last'], r['n'], 0))
    windows = max(r['linear']) + 1 if r['linear'] else 0
    linear, last = [], r['first'] or 0
    for w in range(windows):  # windows without a record start where the next one can
      last = r['linear'].get(w, last)
      linear.append(last)
    out.append(struct.pack(f'<i{windows}Q', windows, *linear))
  out.append(struct.pack('<Q', 0))  # records without coordinates
  return b''.join(out)


class VcfWriter:
  """A bgzipped VCFv4.2 (GT; INFO AC, AN, AF) with its tabix index, renamed into place at the end.

  Records must come in genome order (contigs in header order, positions ascending) for the
  index (`path.tbi`) to be valid, as for `tabix -p vcf`.

  Args:
    path: output .vcf.gz (written as path + '.tmp' until closed without an error).
    samples: the N sample IDs.
    contigs: (name, length) of each contig, for the header.
    source: the header's ##source.
    threads: BGZF compression threads (default: all CPUs).
    header_lines: extra '##key=value' header lines (provenance).
  """

  def __init__(
    self,
    path: str,
    samples: Sequence[str],
    contigs: Sequence[tuple[str, int]],
    source: str = 'gdiff',
    threads: int | None = None,
    header_lines: Sequence[str] = (),
  ):
    self.path, self.num_samples = path, len(samples)
    self._tmp = path + '.tmp'
    self._bgzf = BgzfWriter(self._tmp, threads=threads)
    self._bgzf.write(vcf_header(samples, contigs, source, header_lines))
    self._index = []  # (chrom, beg, end, line starts, line ends) per block of records

  def _write_records(self, records: bytes, variants: Variants) -> None:
    start = self._bgzf.tell
    ends = np.flatnonzero(np.frombuffer(records, np.uint8) == ord('\n')) + 1
    starts = np.concatenate([[0], ends[:-1]])
    beg = np.asarray(variants.pos, np.int64) - 1
    end = beg + np.char.str_len(np.asarray(variants.ref).astype(str))
    self._index.append(
      (np.asarray(variants.chrom).astype(str), beg, end, start + starts, start + ends)
    )
    self._bgzf.write(records)

  def _rows_per_block(self) -> int:
    return max(1, VCF_BLOCK_BYTES // (4 * max(self.num_samples, 1)))

  def write_dosage(self, dosage_NxS: np.ndarray, variants: Variants) -> None:
    """Unphased records of the S variants (dosage in memory, N x S)."""
    block = self._rows_per_block()
    for lo in range(0, len(variants), block):
      hi = min(len(variants), lo + block)
      part = variants.take(slice(lo, hi))
      self._write_records(unphased_records(dosage_NxS[:, lo:hi], part), part)

  def write_haplotypes(self, haplotypes_Sx2N: np.ndarray, variants: Variants) -> None:
    """Phased records of the S variants."""
    block = self._rows_per_block()
    for lo in range(0, len(variants), block):
      hi = min(len(variants), lo + block)
      part = variants.take(slice(lo, hi))
      self._write_records(phased_records(haplotypes_Sx2N[lo:hi], part), part)

  def __enter__(self):
    return self

  def __exit__(self, exc_type, *exc):
    self._bgzf.close()
    if exc_type is not None:
      os.remove(self._tmp)
      return
    parts = list(zip(*self._index)) if self._index else [[np.zeros(0)]] * 5
    chrom, beg, end, starts, ends = (np.concatenate(p) for p in parts)
    index = tabix_index(
      chrom, beg, end, self._bgzf.virtual_offsets(starts), self._bgzf.virtual_offsets(ends)
    )
    with BgzfWriter(self._tmp + '.tbi', threads=1) as f:
      f.write(index)
    os.replace(self._tmp, self.path)
    os.replace(self._tmp + '.tbi', self.path + '.tbi')


def _check(dosage_NxS: np.ndarray, variants: Variants, samples: Sequence[str]) -> None:
  n, s = dosage_NxS.shape
  if s != len(variants) or n != len(samples):
    raise ValueError(
      f'dosage {dosage_NxS.shape} does not match {len(samples)} samples x {len(variants)} variants'
    )


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
    yield lo, np.asarray(dosage_NxS[:, lo : lo + width])


def write_vcf(
  path: str,
  dosage_NxS: np.ndarray,
  variants: Variants,
  samples: Sequence[str],
  *,
  hap0_NxS: np.ndarray | None = None,
  threads: int | None = None,
  header_lines: Sequence[str] = (),
  contigs: Sequence[tuple[str, int]] = (),
) -> None:
  """Writes a bgzipped VCFv4.2 with GT and INFO AC/AN/AF, and its tabix index (path.tbi).

  Args:
    path: output .vcf.gz.
    dosage_NxS: (N, S) int8 ALT counts, a numpy array or an HDF5 dataset (read by chunk
      column); values outside {0, 1, 2} are written './.'.
    variants: the variant table (genome order).
    samples: N sample IDs.
    hap0_NxS: the first haplotype's allele (same shape and kind as `dosage_NxS`): the
      GT is then phased, hap0|dosage-hap0; None: unphased.
    threads: BGZF compression threads (default: all CPUs).
    header_lines: extra '##key=value' header lines (provenance).
    contigs: known (name, length) of contigs (the input's header); the others get their
      largest position.
  """
  _check(dosage_NxS, variants, samples)
  contigs = contig_lengths(variants, contigs)
  with VcfWriter(path, samples, contigs, threads=threads, header_lines=header_lines) as vcf:
    for start, slab_NxW in column_slabs(dosage_NxS):
      part = variants.take(slice(start, start + slab_NxW.shape[1]))
      if hap0_NxS is None:
        vcf.write_dosage(slab_NxW, part)
        continue
      hap0 = np.asarray(hap0_NxS[:, start : start + slab_NxW.shape[1]], np.int8)
      haps_Sx2N = np.empty((slab_NxW.shape[1], 2 * slab_NxW.shape[0]), np.int8)
      haps_Sx2N[:, 0::2] = hap0.T
      haps_Sx2N[:, 1::2] = (slab_NxW - hap0).T
      vcf.write_haplotypes(haps_Sx2N, part)


# -------------------------------------------------------------------------- PLINK


def write_plink(
  prefix: str,
  dosage_NxS: np.ndarray,
  variants: Variants,
  samples: Sequence[str],
  *,
  pheno: Sequence[str] | None = None,
  num_threads: int | None = None,
) -> None:
  """Writes PREFIX.bed/.bim/.fam with bed_reader, streamed by variant; A1 = ALT.

  plink2 reads .bim column 5 (A1) as ALT and column 6 as REF, so its --freq ALT_FREQS
  equal mean(dosage) / 2. Family IDs equal sample IDs; parents and sex are unknown; the
  phenotype is `pheno` (plink's 1 = control, 2 = case: `plink_phenotype`) or -9.

  Args:
    prefix: output path without extension.
    dosage_NxS: (N, S) int8 ALT counts, a numpy array or an HDF5 dataset; values outside
      {0, 1, 2} become missing.
    variants: the variant table.
    samples: N sample IDs (no whitespace).
    pheno: N phenotype codes for the .fam ('1', '2', '-9'); None: all '-9'.
    num_threads: bed_reader threads (default: all).
  """
  import bed_reader

  _check(dosage_NxS, variants, samples)
  samples = np.asarray(samples).astype(str)
  n = len(samples)
  properties = {
    'fid': samples,
    'iid': samples,
    'father': np.full(n, '0'),
    'mother': np.full(n, '0'),
    'sex': np.zeros(n, np.int32),
    'pheno': np.full(n, '-9') if pheno is None else np.asarray(pheno).astype(str),
    'chromosome': np.asarray(variants.chrom).astype(str),
    'sid': np.asarray(variants.id).astype(str),
    'cm_position': np.zeros(len(variants)),
    'bp_position': np.asarray(variants.pos, np.int32),
    'allele_1': np.asarray(variants.alt).astype(str),
    'allele_2': np.asarray(variants.ref).astype(str),
  }
  n, s = dosage_NxS.shape
  with bed_reader.create_bed(
    prefix + '.bed', n, s, properties=properties, count_A1=True, num_threads=num_threads
  ) as bed:
    for _, slab_NxW in column_slabs(dosage_NxS):
      # A fresh, writeable, variant-major copy (bed_reader refuses read-only arrays).
      slab_WxN = np.array(slab_NxW.T, np.int8, order='C')
      slab_WxN[(slab_WxN < 0) | (slab_WxN > 2)] = -127  # missing
      for row_N in slab_WxN:
        bed.write(row_N)


# ------------------------------------------------------------------------- labels


# (control, case) class names, lower case, that make a label plink's binary phenotype.
CONTROL_CASE = (
  ('control', 'case'),
  ('unaffected', 'affected'),
  ('0', '1'),
  ('1', '2'),
  ('no', 'yes'),
  ('false', 'true'),
)


def plink_phenotype(labels: Sequence[str], classes: Sequence[str]) -> np.ndarray | None:
  """plink's binary codes ('1' control, '2' case, '-9' neither) of a two-class label named as
  in `CONTROL_CASE`; None for any other label (a categorical phenotype)."""
  names = tuple(str(c).lower() for c in classes)
  for control, case in CONTROL_CASE:
    if sorted(names) == sorted((control, case)):
      lower = np.char.lower(np.asarray(labels).astype(str))
      return np.where(lower == case, '2', np.where(lower == control, '1', '-9'))
  return None


def _categorical(labels: Sequence[str]) -> np.ndarray:
  """Label names plink2 reads as categories: spaces become '_', and names that parse as
  numbers get a 'c' in front (plink2 would read numbers as a binary or quantitative trait)."""
  names = np.char.replace(np.asarray(labels).astype(str), ' ', '_')

  def numeric(text: str) -> bool:
    try:
      float(text)
    except ValueError:
      return False
    return True

  return np.char.add('c', names) if any(numeric(n) for n in set(names.tolist())) else names


def write_pheno(
  path: str, samples: Sequence[str], labels: Sequence[str], classes: Sequence[str]
) -> None:
  """A plink --pheno file: `#FID<TAB>IID<TAB>label` (FID = IID, as in the .fam), 1/2 for a
  case/control label (as `plink_phenotype`), else the label names as plink2 categories
  (`_categorical`)."""
  codes = plink_phenotype(labels, classes)
  values = _categorical(labels) if codes is None else codes
  with open(path, 'w') as f:
    f.write('#FID\tIID\tlabel\n')
    f.writelines(f'{s}\t{s}\t{y}\n' for s, y in zip(samples, values, strict=True))


def write_labels(path: str, samples: Sequence[str], labels: Sequence[str]) -> None:
  """Writes a TSV with header `sample<TAB>label`."""
  with open(path, 'w') as f:
    f.write('sample\tlabel\n')
    f.writelines(f'{s}\t{y}\n' for s, y in zip(samples, labels, strict=True))
