"""Tests of gdiff.data.writers: BGZF blocks, VCF records, atomic VCF files.

Reading back with bcftools, tabix and plink2 is tested with the callers
(tests/test_export.py for unphased cohorts, tests/test_simulate.py for phased ones).
"""

import gzip
import os
import shutil
import struct
import subprocess

import numpy as np
import pytest

from gdiff.data import writers
from gdiff.data.cohort import Variants


def _blocks(raw: bytes):
  """(header fields, block bytes) of each BGZF block, parsed by the spec (SAM v1 4.1)."""
  out, at = [], 0
  while at < len(raw):
    magic, cm, flg, xlen, si1, si2, slen, bsize = struct.unpack_from('<HBB6xHBBHH', raw, at)
    assert (magic, cm, flg, xlen, si1, si2, slen) == (0x8B1F, 8, 4, 6, ord('B'), ord('C'), 2)
    out.append(raw[at : at + bsize + 1])
    at += bsize + 1
  assert at == len(raw)
  return out


def _text(seed=0, size=300_000):
  rng = np.random.default_rng(seed)
  # Half random bytes (incompressible), half repetitive text.
  return rng.integers(0, 256, size // 2, np.uint8).tobytes() + b'0/1\t1/1\t' * (size // 16)


def test_bgzf_blocks_round_trip_and_threads_give_the_same_bytes(tmp_path):
  data = _text()
  for threads in (1, 3):
    with writers.BgzfWriter(str(tmp_path / f'{threads}.gz'), threads=threads) as f:
      for lo, hi in ((0, 10), (10, 70_000), (70_000, 70_001), (70_001, len(data))):
        f.write(data[lo:hi])  # writes that straddle block boundaries
  raw = (tmp_path / '1.gz').read_bytes()
  assert raw == (tmp_path / '3.gz').read_bytes()
  assert gzip.decompress(raw) == data
  blocks = _blocks(raw)
  # Full blocks of 0xff00 input bytes, the rest, then the empty EOF block.
  assert len(blocks) == -(-len(data) // writers.BGZF_BLOCK) + 1
  assert all(len(b) <= 65536 for b in blocks)
  assert [len(gzip.decompress(b)) for b in blocks[:-1]] == (
    [writers.BGZF_BLOCK] * (len(data) // writers.BGZF_BLOCK) + [len(data) % writers.BGZF_BLOCK]
  )
  assert gzip.decompress(blocks[-1]) == b'' and len(blocks[-1]) == 28


@pytest.mark.skipif(shutil.which('bgzip') is None, reason='htslib bgzip not on PATH')
def test_htslib_reads_our_bgzf(tmp_path):
  data = _text(1)
  path = tmp_path / 'x.gz'
  with writers.BgzfWriter(str(path)) as f:
    f.write(data)
  subprocess.run(['bgzip', '-t', str(path)], check=True)  # checks the BGZF structure
  assert subprocess.run(['bgzip', '-dc', str(path)], check=True, capture_output=True).stdout == data


def _variants():
  return Variants(
    chrom=np.array(['1', '1', '2']),
    pos=np.array([5, 70, 9]),
    id=np.array(['a', 'b', 'c']),
    ref=np.array(['A', 'C', 'G']),
    alt=np.array(['G', 'T', 'A']),
  )


def test_unphased_and_phased_records_known_answer():
  dosage_NxS = np.array([[0, 1, 2], [2, -1, 0]], np.int8)
  assert writers.unphased_records(dosage_NxS, _variants()) == (
    b'1\t5\ta\tA\tG\t.\tPASS\tAC=2;AN=4;AF=0.5\tGT\t0/0\t1/1\n'
    b'1\t70\tb\tC\tT\t.\tPASS\tAC=1;AN=2;AF=0.5\tGT\t0/1\t./.\n'
    b'2\t9\tc\tG\tA\t.\tPASS\tAC=2;AN=4;AF=0.5\tGT\t1/1\t0/0\n'
  )
  haplotypes_Sx2N = np.array([[0, 1, 1, 1], [1, 0, 0, 0], [0, 0, 1, 0]], np.int8)
  assert writers.phased_records(haplotypes_Sx2N, _variants()) == (
    b'1\t5\ta\tA\tG\t.\tPASS\tAC=3;AN=4;AF=0.75\tGT\t0|1\t1|1\n'
    b'1\t70\tb\tC\tT\t.\tPASS\tAC=1;AN=4;AF=0.25\tGT\t1|0\t0|0\n'
    b'2\t9\tc\tG\tA\t.\tPASS\tAC=1;AN=4;AF=0.25\tGT\t0|0\t1|0\n'
  )
  assert writers.contig_lengths(_variants()) == [('1', 70), ('2', 9)]
  # Known lengths win where they are given (and not smaller than a position seen).
  known = [('2', 5000), ('1', 60), ('3', 7)]
  assert writers.contig_lengths(_variants(), known) == [('1', 70), ('2', 5000)]


def test_vcf_writer_text_and_blocks(tmp_path, monkeypatch):
  monkeypatch.setattr(writers, 'VCF_BLOCK_BYTES', 8)  # one record per text block
  path = tmp_path / 'x.vcf.gz'
  haplotypes_Sx2N = np.array([[0, 1, 1, 1], [1, 0, 0, 0], [0, 0, 1, 0]], np.int8)
  with writers.VcfWriter(
    str(path), ['p1', 'p2'], [('1', 100), ('2', 50)], source='test', header_lines=['##x=y']
  ) as f:
    f.write_haplotypes(haplotypes_Sx2N[:2], _variants().take(slice(0, 2)))
    f.write_haplotypes(haplotypes_Sx2N[2:], _variants().take(slice(2, 3)))
  lines = gzip.decompress(path.read_bytes()).decode().splitlines()
  assert lines[:4] == [
    '##fileformat=VCFv4.2',
    '##source=test',
    '##x=y',
    '##contig=<ID=1,length=100>',
  ]
  assert [line[: line.index(',')] for line in lines[5:8]] == [
    '##INFO=<ID=AC',
    '##INFO=<ID=AN',
    '##INFO=<ID=AF',
  ]
  assert lines[8:10] == [
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
    '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tp1\tp2',
  ]
  assert [line.split('\t')[9:] for line in lines[10:]] == [
    ['0|1', '1|1'],
    ['1|0', '0|0'],
    ['0|0', '1|0'],
  ]


def test_vcf_writer_leaves_nothing_when_it_fails(tmp_path):
  path = tmp_path / 'x.vcf.gz'
  with pytest.raises(ValueError), writers.VcfWriter(str(path), ['p1'], [('1', 9)]) as f:
    f.write_dosage(np.zeros((1, 1), np.int8), _variants().take(slice(0, 1)))
    raise ValueError('stop')
  assert list(tmp_path.iterdir()) == []


def _big_cohort(seed=0):
  """3 contigs, 3,000 SNPs x 20 people: a VCF of many BGZF blocks, records across their edges."""
  rng = np.random.default_rng(seed)
  chrom = np.repeat(['1', '2', 'X'], [1500, 1000, 500])
  pos = np.concatenate(
    [np.sort(rng.choice(5_000_000, n, replace=False)) + 1 for n in (1500, 1000, 500)]
  )
  ref = rng.choice(list('ACGT'), 3000)
  variants = Variants(chrom, pos, np.array([f'v{i}' for i in range(3000)]), ref, ref)
  return variants, rng.integers(0, 3, (20, 3000)).astype(np.int8)


@pytest.mark.skipif(shutil.which('bcftools') is None, reason='needs bcftools')
def test_tabix_index_answers_region_queries_like_bcftools(tmp_path):
  variants, dosage = _big_cohort()
  path = str(tmp_path / 'x.vcf.gz')
  writers.write_vcf(path, dosage, variants, [f'p{i}' for i in range(20)], threads=2)
  with open(path, 'rb') as f:  # records cross the edges of several BGZF blocks
    assert len(gzip.decompress(f.read())) > 4 * writers.BGZF_BLOCK
  assert os.path.exists(path + '.tbi')
  rng = np.random.default_rng(1)
  regions = [('1', 1, 5_000_000), ('2', 1, 10), ('X', 4_000_000, 4_100_000)]
  regions += [
    (c, int(a), int(a) + int(w))
    for c, a, w in zip(
      rng.choice(['1', '2', 'X'], 20), rng.integers(1, 5_000_000, 20), rng.integers(1, 300_000, 20)
    )
  ]
  for c, lo, hi in regions:
    out = subprocess.run(
      ['bcftools', 'query', '-r', f'{c}:{lo}-{hi}', '-f', '%CHROM %POS %INFO/AC %INFO/AN\n', path],
      check=True,
      capture_output=True,
      text=True,
    ).stdout.split()
    keep = (variants.chrom == c) & (variants.pos >= lo) & (variants.pos <= hi)
    ac = dosage[:, keep].sum(0)
    want = [str(x) for p, a in zip(variants.pos[keep], ac) for x in (c, p, a, 40)]
    assert out == want, (c, lo, hi)
  stats = subprocess.run(
    ['bcftools', 'index', '-n', path], check=True, capture_output=True, text=True
  )
  assert stats.stdout.strip() == '3000'


def test_reg2bin_and_tabix_limits_known_answers(tmp_path):
  # htslib's hts_reg2bin(beg, end, 14, 5) for 0-based [beg, end).
  assert writers._reg2bin(0, 1) == 4681
  assert writers._reg2bin(16383, 16385) == 585  # crosses a 16 kb window
  assert writers._reg2bin((1 << 14) * 3, (1 << 14) * 3 + 1) == 4684
  assert writers._reg2bin(0, 1 << 29) == 0
  with pytest.raises(ValueError, match='2\\^29'):
    writers.tabix_index(['1'], [1 << 29], [(1 << 29) + 1], [0], [1])


@pytest.mark.skipif(shutil.which('bcftools') is None, reason='needs bcftools')
def test_an_empty_vcf_gets_an_index_bcftools_reads(tmp_path):
  path = str(tmp_path / 'e.vcf.gz')
  with writers.VcfWriter(path, ['p1'], [('1', 100)]):
    pass
  out = subprocess.run(
    ['bcftools', 'view', '-H', '-r', '1:1-100', path], check=True, capture_output=True, text=True
  )
  assert out.stdout == ''
