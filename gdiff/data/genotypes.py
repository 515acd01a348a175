"""What the genotype calls and chromosome names of a VCF record mean (ingest reads by these).

Genotype calls (VCF). The GT text of every call is read and checked (`decode_gt`):
a diploid call of allele indices 0/1 (phased or not) is the ALT count; a call with
a missing allele ('./.', '0/.', '.') is missing. Every other call of a record with
at most one ALT allele is an error that names the file, line, sample and call:
an allele index beyond the record's ALT alleles ('0/3', '1/2' at a single-ALT
site), more than two alleles ('0/1/1'), a haploid call on an autosome, or text
that is not a genotype. With `data.qc.bad_calls='missing'` such calls are read
as missing instead and counted per reason in the manifest (`bad_calls`).
Multiallelic records are dropped whole (QC reason 'multiallelic') and their
calls are not inspected.

Haploid calls on the sex chromosomes and mitochondria (X, Y, MT or M, with or
without 'chr'; PLINK's 23, 24 and 26), as callers write them for males, are
read as homozygous diploid ('1' as 1|1, '0' as 0|0) and counted per record
(`haploid_calls_S`); what becomes of these chromosomes is `data.sex_chromosomes`
(`gdiff.data.qc`: dropped whole and counted by default, or kept as read). Never
read as missing and filled: that would invent a second allele for every male.
PLINK .bed and .pgen files store males' X calls as homozygous, and they are
read so.

Phase. Each diploid call also gives the allele on its first haplotype (`hap0`,
the a of 'a|b' or 'a/b'; the second is the ALT count minus it). A heterozygous
call written with '/' ('0/1', '1/0') has unknown phase and is counted per
record (`unphased_het_S`); '0/0' and '1/1' are phase-free whatever the
separator. A cohort is phased when no heterozygous call it keeps has unknown
phase (see `gdiff.data.qc` for filled calls and PLINK input).

Chromosome names must be written one way per file: '22' and 'chr22' together
are refused.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from gdiff.errors import InputError, where

# data.qc.bad_calls: what a call that is not a diploid genotype of the record's alleles is.
BAD_CALLS = ('error', 'missing')
# Reasons a call is bad (counted in the manifest under data.qc.bad_calls='missing').
BAD_CALL_REASONS = ('allele_beyond_alt', 'ploidy', 'malformed')
# Where haploid calls are expected (chromosome names without 'chr', upper case).
HAPLOID_CHROMOSOMES = frozenset({'X', 'Y', 'MT', 'M', '23', '24', '26'})


def chrom_key(name: str) -> str:
  """'chr22', 'Chr22' and '22' all give '22' (the name without its 'chr' prefix)."""
  name = str(name)
  return name[3:] if name[:3].lower() == 'chr' else name


def check_contig_names(names, path: str, seen: dict | None = None) -> None:
  """Refuses a file that names one chromosome two ways ('22' and 'chr22').

  `seen` (chrom_key -> name) carries the names met so far across calls.
  """
  seen = {} if seen is None else seen
  for name in names:
    other = seen.setdefault(chrom_key(name).upper(), name)
    if other != name:
      raise InputError(
        f'{path}: chromosome {other!r} and {name!r} both appear; name every '
        f'chromosome one way (with or without "chr"), e.g. with bcftools '
        f'annotate --rename-chrs'
      )


# The common call as one little-endian uint32 of its 4 GT bytes: '0/1' is 0x00312F30.
# Clearing bit 0 of both allele bytes maps '0' and '1' alike to '0'.
_ALLELES_01 = np.uint32(0xFFFEFFFE)
_UNPHASED_01 = np.uint32(0x00302F30)  # '0/0' so masked: '0/0', '0/1', '1/0', '1/1'
_PHASED_01 = np.uint32(0x00307C30)  # '0|0' so masked
_ROWS = 256  # records per block of the fast pass (its temporaries stay in cache)


class Calls(NamedTuple):
  """What `decode_gt` reads from the GT text of S records x N samples."""

  dosage_SxN: np.ndarray  # int8 ALT count, -1 missing
  hap0_SxN: np.ndarray  # int8 allele (0/1) on the first haplotype; 0 where missing
  unphased_het_S: np.ndarray  # int64 heterozygous calls of unknown phase ('/') per record
  haploid_calls_S: np.ndarray  # int64 haploid calls (sex chromosome or MT) read as homozygous
  bad_calls: dict[str, int]  # {reason: count} of bad calls read as missing


def decode_gt(
  gt_SxN: np.ndarray,
  numalt_S: np.ndarray,
  chrom_S: np.ndarray,
  pos_S: np.ndarray,
  path: str,
  first_line: int | None,
  samples: np.ndarray,
  bad_calls: str,
) -> Calls:
  """ALT counts and phase from GT text (see the module docstring for what each call means).

  Args:
    gt_SxN: (S, N) |S4, the first 4 bytes of each call's GT.
    numalt_S: (S,) ALT alleles of each record.
    chrom_S, pos_S: the records' CHROM and POS (for messages and the haploid rule).
    path: the file (or 'file [region]') for messages.
    first_line: line number of record 0, or None when lines are not known.
    samples: (N,) sample IDs, for messages.
    bad_calls: `data.qc.bad_calls`.

  Returns:
    Calls.
  """
  gt_SxN = np.ascontiguousarray(gt_SxN, dtype='S4')
  code_SxN = gt_SxN.view('<u4')
  dosage = np.empty(code_SxN.shape, np.int8)
  hap0 = np.empty(code_SxN.shape, np.int8)
  unphased = np.zeros(len(code_SxN), np.int64)
  # A uint8 sum in uint16 is several times faster than count_nonzero; a row counts <= N.
  count_dtype = np.uint16 if code_SxN.shape[1] < 1 << 16 else np.int64
  others = []  # (rows, cols) of the calls the fast pass leaves to `_parse_call`
  for lo in range(0, len(code_SxN), _ROWS):  # the fast pass: 0/1 alleles, 2 of them
    block = code_SxN[lo : lo + _ROWS]
    masked = block & _ALLELES_01
    slash = masked == _UNPHASED_01
    ok = masked == _PHASED_01
    ok |= slash
    alleles = block & np.uint32(0x00010001)  # bit 0 of each allele byte: allele 1
    np.copyto(hap0[lo : lo + _ROWS], alleles, casting='unsafe')  # low byte: the first allele
    alleles += alleles >> 16
    np.copyto(dosage[lo : lo + _ROWS], alleles, casting='unsafe')  # low byte: their sum
    het = dosage[lo : lo + _ROWS] == 1
    het &= slash  # '0/1' or '1/0'
    if het.any():
      unphased[lo : lo + _ROWS] = het.view(np.uint8).sum(axis=1, dtype=count_dtype)
    if not ok.all():
      r, c = np.nonzero(~ok)
      others.append((r + lo, c))
  haploid = np.zeros(len(code_SxN), np.int64)
  counts = {}
  if not others:
    return Calls(dosage, hap0, unphased, haploid, counts)
  rows, cols = (np.concatenate(x) for x in zip(*others))
  keep = numalt_S[rows] <= 1  # multiallelic records are dropped whole, calls unread
  rows, cols = rows[keep], cols[keep]
  if not len(rows):
    return Calls(dosage, hap0, unphased, haploid, counts)
  _, first, which = np.unique(code_SxN[rows, cols], return_index=True, return_inverse=True)
  parsed = [_parse_call(gt_SxN[rows[k], cols[k]]) for k in first]  # one per distinct text
  kind = np.array([p.kind for p in parsed], dtype=object)[which]
  top = np.array([p.top for p in parsed], np.int64)[which]  # largest allele index
  value = np.array([p.dosage for p in parsed], np.int8)[which]  # ALT count, -1 missing
  first_allele = np.array([p.hap0 for p in parsed], np.int8)[which]
  unknown_phase = np.array([p.unphased_het for p in parsed], bool)[which]
  sex = np.array([chrom_key(c).upper() in HAPLOID_CHROMOSOMES for c in chrom_S])[rows]
  reason = np.full(len(rows), '', dtype=object)
  reason[kind == 'malformed'] = 'malformed'
  reason[(kind == 'polyploid') & (reason == '')] = 'ploidy'
  reason[(top > numalt_S[rows]) & (reason == '')] = 'allele_beyond_alt'
  reason[(kind == 'haploid') & ~sex & (reason == '')] = 'ploidy'
  bad = np.flatnonzero(reason != '')
  if len(bad) and bad_calls == 'error':
    i = bad[0]
    r, c = rows[i], cols[i]
    at = where(path, None if first_line is None else first_line + int(r))
    raise InputError(
      f'{at}: {chrom_S[r]}:{pos_S[r]} sample {samples[c]}: '
      f'{_why(reason[i], _call_text(gt_SxN[r, c]), numalt_S[r], chrom_S[r])} '
      f'(or set data.qc.bad_calls=missing to read such calls as missing)'
    )
  value[bad] = -1
  for name in BAD_CALL_REASONS:
    n = int((reason[bad] == name).sum())
    if n:
      counts[name] = n
  hap = (kind == 'haploid') & (reason == '')  # on a sex chromosome or MT: homozygous
  np.add.at(haploid, rows[hap], 1)
  value[hap] = np.where(top[hap] == 1, 2, 0)  # only allele 1 counts (multiallelic: dropped)
  first_allele[hap] = top[hap] == 1
  dosage[rows, cols] = value
  hap0[rows, cols] = np.where(value < 0, 0, first_allele)
  np.add.at(unphased, rows[unknown_phase & (value == 1)], 1)
  return Calls(dosage, hap0, unphased, haploid, counts)


def _call_text(raw: bytes) -> str:
  text = raw.decode('latin-1')
  return text + '…' if len(text) == 4 else text  # S4 keeps 4 bytes; the call may go on


class _Call(NamedTuple):
  kind: str  # 'diploid', 'haploid', 'missing', 'polyploid' (> 2 alleles) or 'malformed'
  top: int = -1  # largest allele index, -1 if none
  dosage: int = -1  # ALT count of a diploid call, else -1
  hap0: int = 0  # a diploid call's first allele is ALT (1) or not (0)
  unphased_het: bool = False  # a diploid call of two different alleles joined by '/'


def _parse_call(raw: bytes) -> _Call:
  """What one call's GT text (<= 4 bytes) is; text cut at 4 bytes is read as far as it goes."""
  text = raw.decode('latin-1')
  parts = text.replace('|', '/').split('/')
  if len(text) == 4 and parts[-1] == '':  # cut right after a separator: more follows
    return _Call('polyploid') if len(parts) >= 3 else _Call('malformed')
  if not text or not all(p == '.' or p.isdigit() for p in parts):
    return _Call('malformed')
  if len(parts) > 2:
    return _Call('polyploid')
  alleles = [int(p) for p in parts if p != '.']
  top = max(alleles, default=-1)
  if len(alleles) < len(parts):
    return _Call('missing', top)
  if len(parts) == 1:
    return _Call('haploid', top)
  return _Call(
    'diploid',
    top,
    sum(a == 1 for a in alleles),
    int(alleles[0] == 1),
    alleles[0] != alleles[1] and '/' in text,
  )


def _why(reason: str, text: str, numalt: int, chrom: str) -> str:
  if reason == 'allele_beyond_alt':
    return f"genotype {text!r} has an allele index beyond the record's {numalt} ALT allele(s)"
  if reason == 'malformed':
    return f'genotype {text!r} is not a genotype call (expected e.g. 0/1, 1|1 or ./.)'
  if '/' in text or '|' in text:
    return f'genotype {text!r} has more than two alleles (gdiff reads diploid genotypes)'
  return (
    f'genotype {text!r} is haploid on chromosome {chrom} (haploid calls are read on '
    f'X, Y and MT only; gdiff reads diploid genotypes)'
  )
