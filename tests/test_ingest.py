"""Tests of gdiff.data.ingest and gdiff.data.qc against scikit-allel, plink2 and bcftools."""

import dataclasses
import gzip
import os
import re
import shutil
import struct
import subprocess
import zlib

import allel
import h5py
import numpy as np
import pytest

from configs import base
from gdiff.data import cohort as cohort_lib
from gdiff.data import ingest, qc, simulate, sources, writers
from gdiff.errors import InputError

needs_plink2 = pytest.mark.skipif(shutil.which('plink2') is None, reason='plink2 not installed')
needs_bcftools = pytest.mark.skipif(
  shutil.which('bcftools') is None, reason='bcftools not installed'
)


def _qc(**overrides):
  q = base.get_config().data.qc
  q.update(overrides)
  return q


@pytest.fixture(scope='module')
def clean_vcf(tmp_path_factory):
  s = base.get_config().data.simulate
  s.populations = ('YRI', 'CEU', 'CHB')
  s.samples_per_population = (20, 20, 20)
  s.contig_length = 300_000
  s.max_snps_per_contig = 100
  s.min_maf = 0.02
  vcf, _, _ = simulate.simulate_to_files(s, str(tmp_path_factory.mktemp('clean')))
  return vcf


def _lines(path):
  with gzip.open(path, 'rt') as f:
    return f.read().splitlines()


def _gts(n, calls):
  return '\t'.join(calls[i % len(calls)] for i in range(n))


@pytest.fixture(scope='module')
def dirty_vcf(clean_vcf, tmp_path_factory):
  """The clean VCF plus one record per QC reason and 3 missing calls in record 20."""
  lines = _lines(clean_vcf)
  head = [x for x in lines if x.startswith('#')]
  body = [x.split('\t') for x in lines if not x.startswith('#')]
  n = len(body[0]) - 9

  def after(i, ref, alt, calls):
    pos = int(body[i][1]) + 1
    assert pos < int(body[i + 1][1]) and body[i][0] == body[i + 1][0]
    return [body[i][0], str(pos), f'extra{i}', ref, alt, '.', 'PASS', '.', 'GT', _gts(n, calls)]

  extra = {
    3: after(3, 'A', 'C,G', ['0|1', '1|2', '0|0']),  # multiallelic
    8: after(8, 'AT', 'A', ['0|1', '0|0']),  # indel -> not_snp
    12: after(12, 'G', 'T', ['0|0']),  # monomorphic -> maf
    30: after(30, 'C', 'T', ['0|1', './.']),  # call rate 0.5
    150: after(150, 'G', '<DEL>', ['0|1', '0|0']),  # symbolic -> not_snp
  }
  dup = list(body[40])
  dup[2] = 'dup40'
  body[20][9:12] = ['./.', '.|.', '0|.']  # 3 missing calls in a kept SNP
  out = list(head)
  for i, rec in enumerate(body):
    out.append('\t'.join(rec))
    if i == 40:
      out.append('\t'.join(dup))  # same chrom/pos as record 40 -> duplicate
    if i in extra:
      out.append('\t'.join(extra[i]))
  path = str(tmp_path_factory.mktemp('dirty') / 'dirty.vcf')
  with open(path, 'w') as f:
    f.write('\n'.join(out) + '\n')
  return path, len(body), body[20][2]


def _out(tmp_path, kind, chunk, shard):
  return tmp_path / f'out-{kind}-{chunk}-{shard}'


def _ingest(path, tmp_path, kind='vcf', chunk=10_000, shard=50_000, **qc_overrides):
  source = sources.open_source(kind, str(path))
  out = _out(tmp_path, kind, chunk, shard)
  stats = ingest.ingest(source, str(out), chunk, shard, _qc(**qc_overrides))
  shards = sorted(os.listdir(out / 'shards'))
  c = cohort_lib.Cohort(
    str(out),
    source.samples,
    source.samples,
    np.zeros(len(source.samples)),
    ('x',),
    np.array(['train'] * len(source.samples)),
    tuple(str(out / 'shards' / s) for s in shards),
  )
  return source, stats, c.variants(), c.dosages()


def _ingest_phase(path, tmp_path, kind='vcf', chunk=10_000, shard=50_000, **qc_overrides):
  """`_ingest`, plus the shards' hap0 (N, S)."""
  source, stats, variants, dosage = _ingest(path, tmp_path, kind, chunk, shard, **qc_overrides)
  hap0 = []
  for shard_info in stats['shards']:
    with h5py.File(_out(tmp_path, kind, chunk, shard) / shard_info['file'], 'r') as f:
      hap0.append(f['hap0'][()])
  return stats, variants, dosage, np.concatenate(hap0, axis=1)


def _reference_qc(path, min_maf, min_call_rate):
  """QC recomputed independently from scikit-allel's read_vcf."""
  cs = allel.read_vcf(path, fields=['variants/*', 'calldata/GT'], alt_number=2)
  ref, alt = cs['variants/REF'], cs['variants/ALT']
  gt = allel.GenotypeArray(cs['calldata/GT'])
  snp = (alt[:, 1] == '') & np.isin(ref, list('ACGT')) & np.isin(alt[:, 0], list('ACGT'))
  key = list(zip(cs['variants/CHROM'], cs['variants/POS']))
  dup = np.array([i > 0 and key[i] == key[i - 1] for i in range(len(key))])
  n_alt = gt.to_n_alt(fill=-1)
  called = n_alt >= 0
  freq = np.where(called, n_alt, 0).sum(1) / np.maximum(2 * called.sum(1), 1)
  keep = snp & ~dup & (called.mean(1) >= min_call_rate) & (np.minimum(freq, 1 - freq) >= min_maf)
  fill = np.floor(freq * 2 + 0.5)[:, None]
  dosage = np.where(called, n_alt, fill)[keep].T.astype(np.int8)
  return cs['variants/ID'][keep], dosage, int((~called[keep]).sum())


def _reference_hap0(path, ids, dosage_NxS):
  """First alleles of the calls of `ids` as scikit-allel reads them; filled calls 0|0, 1|0, 1|1."""
  cs = allel.read_vcf(path, fields=['variants/ID', 'calldata/GT'], alt_number=2)
  row = {i: k for k, i in enumerate(cs['variants/ID'])}
  gt = cs['calldata/GT'][[row[i] for i in ids]]  # (S, N, 2), -1 missing
  missing = (gt < 0).any(axis=2).T
  first = gt[:, :, 0].T.astype(np.int8)
  return np.where(missing, np.minimum(dosage_NxS, 1), first), missing


# chunk 9: the duplicate (record 45) opens a chunk, so it is caught across chunks.
@pytest.mark.parametrize('chunk, shard', [(10_000, 50_000), (7, 50), (9, 13)])
def test_vcf_matches_scikit_allel_and_counts_drops(dirty_vcf, tmp_path, chunk, shard):
  path, num_clean, missing_id = dirty_vcf
  source, stats, variants, dosage = _ingest(path, tmp_path, chunk=chunk, shard=shard, min_hwe_p=0.0)
  assert stats['variants_read'] == num_clean + 6
  assert stats['dropped'] == {
    'multiallelic': 1,
    'not_snp': 2,
    'sex_chromosome': 0,
    'duplicate': 1,
    'call_rate': 1,
    'maf': 1,
    'hwe': 0,
  }
  assert stats['variants_kept'] == num_clean == len(variants)
  assert stats['missing_filled'] == 3
  assert len(stats['shards']) == -(-num_clean // shard)
  ids, expected, filled = _reference_qc(path, 0.01, 0.95)
  assert filled == 3
  np.testing.assert_array_equal(variants.id, ids)
  np.testing.assert_array_equal(dosage, expected)
  assert dosage.dtype == np.int8 and dosage.shape == (60, num_clean)
  assert missing_id in set(variants.id)
  assert not any(i.startswith('extra') or i == 'dup40' for i in variants.id)


@pytest.mark.parametrize('chunk, shard', [(10_000, 50_000), (9, 13)])
def test_phased_vcf_keeps_the_first_haplotype(dirty_vcf, tmp_path, chunk, shard):
  # Every call is phased ('|'); the 3 missing calls are filled. hap0 is the a of each
  # 'a|b' (scikit-allel's first allele), hap1 = dosage - hap0 is an allele too.
  path, _, _ = dirty_vcf
  stats, variants, dosage, hap0 = _ingest_phase(
    path, tmp_path, chunk=chunk, shard=shard, min_hwe_p=0.0
  )
  expected, filled = _reference_hap0(path, variants.id, dosage)
  assert hap0.dtype == np.int8 and filled.sum() == 3
  np.testing.assert_array_equal(hap0, expected)
  assert set(np.unique(dosage - hap0)) == {0, 1} and set(np.unique(hap0)) == {0, 1}
  # Phase as written: a heterozygote is 1|0 for some people, 0|1 for others.
  het = (dosage == 1) & ~filled
  assert 0 < hap0[het].sum() < het.sum()
  # The 3 filled calls are 0|0 (the SNP's ALT is rare), so no call has unknown phase.
  np.testing.assert_array_equal(dosage[filled], [0, 0, 0])
  assert stats['phased'] and stats['unphased_het_calls'] == 0


def test_unphased_het_calls_are_counted_among_kept_snps(tmp_path):
  phased = [
    ('1', 10, 'G', ['0|1', '1|0', '0/0', '1/1', '0|0', '1|1']),
    ('1', 20, 'G', ['1|1', '0|1', '0|0', '1|0', '0/0', '1/1']),
    ('1', 25, 'GT', ['0/1', '0/1', '0/0', '1/1', '0|0', '1|1']),
  ]  # indel: dropped
  stats, _, dosage, hap0 = _ingest_phase(
    _calls_vcf(tmp_path / 'p.vcf', phased), tmp_path, min_maf=0.0, min_hwe_p=0.0
  )
  assert stats['phased'] and stats['unphased_het_calls'] == 0  # 0/0 and 1/1 are phase-free
  assert stats['dropped']['not_snp'] == 1
  np.testing.assert_array_equal(hap0.T, [[0, 1, 0, 1, 0, 1], [1, 0, 0, 1, 0, 1]])
  np.testing.assert_array_equal(dosage.T, [[1, 1, 0, 2, 0, 2], [2, 1, 0, 1, 0, 2]])
  one = [phased[0], ('1', 20, 'G', ['1|1', '0|1', '0|0', '0/1', '0/0', '1/1'])]
  stats, _, _, hap0 = _ingest_phase(
    _calls_vcf(tmp_path / 'one.vcf', one), tmp_path / 'one', min_maf=0.0, min_hwe_p=0.0
  )
  assert not stats['phased'] and stats['unphased_het_calls'] == 1
  assert hap0[3, 1] == 0  # '0/1': the first allele as written


def test_phase_of_calls_off_the_fast_path(tmp_path):
  # '01' is allele 1 (htslib reads indices as integers): these calls take the slow
  # parser. '0/2' is a bad call read as missing, never counted as a heterozygote.
  rows = [('1', 10, 'G', ['0/01', '01|0', '0|01', '1|1', '0/.', '0/2'])]
  path = _calls_vcf(tmp_path / 'slow.vcf', rows)
  chunk = next(sources.open_source('vcf', path).chunks(10, bad_calls='missing'))
  np.testing.assert_array_equal(chunk.dosage_SxN, [[1, 1, 1, 2, -1, -1]])
  np.testing.assert_array_equal(chunk.hap0_SxN, [[0, 1, 0, 1, 0, 0]])
  np.testing.assert_array_equal(chunk.unphased_het_S, [1])
  assert chunk.bad_calls == {'allele_beyond_alt': 1}


def test_filled_calls_follow_their_dosage():
  # Fill values 1 (mean 1), 0 (mean 0.25) and 2 (mean 1.75) for the last sample.
  dosage = np.array([[1, 1, 1, 1, -1], [0, 0, 0, 1, -1], [2, 2, 2, 1, -1]], np.int8)
  hap0 = np.array([[0, 1, 0, 1, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 0]], np.int8)
  chunk = qc.RawChunk(
    np.array(['1'] * 3),
    np.array([10, 20, 30]),
    np.array(['a', 'b', 'c']),
    np.array(['A'] * 3),
    np.array(['G'] * 3),
    np.zeros(3, bool),
    dosage,
    hap0_SxN=hap0,
    unphased_het_S=np.array([2, 0, 0]),
  )
  result = qc.qc_chunk(chunk, _qc(min_maf=0.0, min_call_rate=0.0, min_hwe_p=0.0), None)
  np.testing.assert_array_equal(result.dosage_SxK[:, -1], [1, 0, 2])
  np.testing.assert_array_equal(result.hap0_SxK[:, -1], [1, 0, 1])  # 1|0, 0|0, 1|1
  np.testing.assert_array_equal(result.hap0_SxK[:, :-1], hap0[:, :-1])
  assert result.unphased_het_calls == 2 + 1
  unphased = qc.qc_chunk(
    dataclasses.replace(chunk, hap0_SxN=None, unphased_het_S=None),
    _qc(min_maf=0.0, min_call_rate=0.0, min_hwe_p=0.0),
    None,
  )
  np.testing.assert_array_equal(unphased.hap0_SxK, np.minimum(unphased.dosage_SxK, 1))
  assert unphased.unphased_het_calls == int((unphased.dosage_SxK == 1).sum()) == 7


def test_gzip_and_plain_vcf_agree(dirty_vcf, clean_vcf, tmp_path):
  path, _, _ = dirty_vcf
  gz = tmp_path / 'dirty.vcf.gz'
  with open(path, 'rb') as f, writers.BgzfWriter(str(gz)) as out:
    out.write(f.read())
  _, _, v1, d1 = _ingest(path, tmp_path, min_hwe_p=0.0)
  _, _, v2, d2 = _ingest(gz, tmp_path, min_hwe_p=0.0)
  np.testing.assert_array_equal(d1, d2)
  np.testing.assert_array_equal(v1.pos, v2.pos)


def _plink_table(path):
  with open(path) as f:
    header = f.readline().lstrip('#').split()
    rows = [line.split() for line in f]
  return {h: np.array([r[i] for r in rows]) for i, h in enumerate(header)}


@needs_plink2
def test_frequencies_and_hwe_match_plink2(clean_vcf, tmp_path):
  subprocess.run(
    ['plink2', '--vcf', clean_vcf, '--freq', '--hardy', '--out', str(tmp_path / 'p')],
    check=True,
    capture_output=True,
  )
  afreq = _plink_table(tmp_path / 'p.afreq')
  hardy = _plink_table(tmp_path / 'p.hardy')
  _, _, variants, dosage = _ingest(clean_vcf, tmp_path, min_maf=0.0, min_hwe_p=0.0)
  np.testing.assert_array_equal(variants.id, afreq['ID'])
  np.testing.assert_allclose(dosage.mean(0) / 2, afreq['ALT_FREQS'].astype(float), atol=1e-6)
  het = (dosage == 1).sum(0)
  p = qc.hwe_exact_p(het, (dosage == 0).sum(0), (dosage == 2).sum(0))
  np.testing.assert_array_equal(hardy['HET_A1_CT'].astype(int), het)
  np.testing.assert_allclose(p, hardy['P'].astype(float), rtol=1e-4)
  # The filter keeps exactly the SNPs plink2 gives p >= threshold (pooled samples).
  threshold = float(np.quantile(p, 0.3))
  _, stats, kept, _ = _ingest(
    clean_vcf, tmp_path, chunk=33, min_maf=0.0, min_hwe_p=threshold, hwe_within='all'
  )
  plink_keep = hardy['P'].astype(float) >= threshold * (1 + 1e-4)
  plink_drop = hardy['P'].astype(float) < threshold * (1 - 1e-4)
  assert set(hardy['ID'][plink_keep]) <= set(kept.id)
  assert not set(hardy['ID'][plink_drop]) & set(kept.id)
  assert stats['dropped']['hwe'] >= plink_drop.sum() > 0


def test_hwe_exact_known_values():
  # n=3, 2 rare alleles: P(het=2)=0.8, P(het=0)=0.2 (hand-computed from the exact formula).
  p = qc.hwe_exact_p(np.array([2, 0, 0]), np.array([1, 2, 5]), np.array([0, 1, 0]))
  np.testing.assert_allclose(p, [1.0, 0.2, 1.0])


@needs_plink2
def test_plink_matches_vcf(clean_vcf, tmp_path):
  prefix = str(tmp_path / 'bed')
  subprocess.run(
    ['plink2', '--vcf', clean_vcf, '--make-bed', '--out', prefix], check=True, capture_output=True
  )
  vs, _, v_vcf, d_vcf = _ingest(clean_vcf, tmp_path)
  ps, _, v_bed, d_bed = _ingest(prefix, tmp_path, kind='plink', chunk=17)
  np.testing.assert_array_equal(ps.samples, vs.samples)
  for field in ('chrom', 'pos', 'id', 'ref', 'alt'):
    np.testing.assert_array_equal(getattr(v_bed, field), getattr(v_vcf, field))
  np.testing.assert_array_equal(d_bed, d_vcf)


@needs_plink2
def test_plink_is_unphased(clean_vcf, tmp_path):
  prefix = str(tmp_path / 'bed')
  subprocess.run(
    ['plink2', '--vcf', clean_vcf, '--make-bed', '--out', prefix], check=True, capture_output=True
  )
  vcf_stats, _, _, vcf_hap0 = _ingest_phase(clean_vcf, tmp_path)
  assert vcf_stats['phased'] and vcf_stats['unphased_het_calls'] == 0
  stats, _, dosage, hap0 = _ingest_phase(prefix, tmp_path, kind='plink', chunk=17)
  assert not stats['phased']
  assert stats['unphased_het_calls'] == int((dosage == 1).sum()) > 0
  np.testing.assert_array_equal(hap0, np.minimum(dosage, 1))  # 1|0, phase unknown
  assert (hap0 != vcf_hap0).any()  # the VCF's phase is not the PLINK convention


@needs_bcftools
def test_bcf_through_bcftools(clean_vcf, tmp_path):
  bcf = str(tmp_path / 'c.bcf')
  subprocess.run(['bcftools', 'view', '-Ob', '-o', bcf, clean_vcf], check=True)
  _, _, v1, d1 = _ingest(clean_vcf, tmp_path)
  _, _, v2, d2 = _ingest(bcf, tmp_path)
  np.testing.assert_array_equal(d1, d2)
  np.testing.assert_array_equal(v1.id, v2.id)


def _write(path, text):
  with open(path, 'w') as f:
    f.write(text)
  return str(path)


HEADER = (
  '##fileformat=VCFv4.2\n##FORMAT=<ID=GT,Number=1,Type=String,Description="GT">\n'
  '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ta\tb\tc\n'
)
ROW = '1\t{pos}\t.\tA\tG\t.\t.\t.\tGT\t0|1\t1|1\t0|0\n'


@pytest.mark.parametrize(
  'text, message',
  [
    (HEADER + ROW.format(pos=5) + '1\t9\t.\tA\tG\t.\t.\t.\tGT\t0|1\t1|1\n', r'bad\.vcf:5: 11 '),
    (HEADER + ROW.format(pos='x7'), r"bad\.vcf:4: POS 'x7'"),
    ('chr1\t5\n', r'bad\.vcf:1: not a VCF'),
    (HEADER.replace('\tFORMAT\ta\tb\tc', ''), r'bad\.vcf:3: the VCF has no samples'),
    (HEADER + ROW.format(pos=9) + ROW.format(pos=5), r'not sorted: 1:5 after 1:9'),
  ],
)
def test_malformed_vcf_is_input_error(tmp_path, text, message):
  path = _write(tmp_path / 'bad.vcf', text)
  with pytest.raises(InputError, match=message):
    source = sources.open_source('vcf', path)
    ingest.ingest(source, str(tmp_path / 'o'), 10, 10, _qc())


def _calls_vcf(path, rows):
  """A VCF of samples a..f; rows: (chrom, pos, alt, [6 GT texts])."""
  text = (
    '##fileformat=VCFv4.2\n##FORMAT=<ID=GT,Number=1,Type=String,Description="GT">\n'
    '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ta\tb\tc\td\te\tf\n'
  )
  for chrom, pos, alt, calls in rows:
    text += '\t'.join([chrom, str(pos), '.', 'A', alt, '.', '.', '.', 'GT', *calls]) + '\n'
  return _write(path, text)


def test_every_call_is_read_exactly_or_refused(tmp_path):
  rows = [
    ('1', 10, 'G', ['0/0', '0|1', '1/0', '1|1', './.', '0/.']),
    ('1', 20, 'G', ['.', '.|1', '1/1', '0/1', '0/0', '1/1']),
    ('1', 30, 'G,T', ['0/2', '1/2', '2/2', '0/0', '0/1', '0/1/2']),  # dropped whole
    ('chrX', 40, 'G', ['0', '1', '0/1', '1/1', '0/0', '1']),  # haploid: homozygous
    ('chrX', 50, 'G', ['0/1', '1/1', '0/0', '0/1', '1/1', '0/0']),
  ]
  path = _calls_vcf(tmp_path / 'calls.vcf', rows)
  chunk = next(sources.open_source('vcf', path).chunks(10))
  np.testing.assert_array_equal(
    chunk.dosage_SxN[[0, 1, 3, 4]],
    [[0, 1, 1, 2, -1, -1], [-1, -1, 2, 1, 0, 2], [0, 2, 1, 2, 0, 2], [1, 2, 0, 1, 2, 0]],
  )
  np.testing.assert_array_equal(chunk.hap0_SxN[3], [0, 1, 0, 1, 0, 1])
  np.testing.assert_array_equal(chunk.multiallelic, [False, False, True, False, False])
  np.testing.assert_array_equal(chunk.haploid_calls_S, [0, 0, 0, 3, 0])
  loose = _qc(min_maf=0.0, min_call_rate=0.0, min_hwe_p=0.0)
  result = qc.qc_chunk(chunk, loose, None)  # data.sex_chromosomes='drop': X dropped whole
  assert result.dropped['sex_chromosome'] == 2 and result.dropped['multiallelic'] == 1
  np.testing.assert_array_equal(result.keep, [True, True, False, False, False])
  assert result.haploid_calls == 0
  result = qc.qc_chunk(chunk, loose, None, sex_chromosomes='diploid')
  assert result.dropped['sex_chromosome'] == 0
  np.testing.assert_array_equal(result.keep, [True, True, False, True, True])
  assert result.haploid_calls == 3


@pytest.mark.parametrize(
  'chrom, calls, reason, message',
  [
    ('1', ['0/3'], 'allele_beyond_alt', "'0/3' has an allele index beyond the record's 1 ALT"),
    ('1', ['1/2'], 'allele_beyond_alt', "'1/2' has an allele index beyond"),
    ('1', ['0/10'], 'allele_beyond_alt', "'0/10…' has an allele index beyond"),
    ('1', ['0/1/1'], 'ploidy', "'0/1/…' has more than two alleles"),
    ('1', ['1'], 'ploidy', "'1' is haploid on chromosome 1"),
    ('22', ['2'], 'allele_beyond_alt', "'2' has an allele index beyond"),
    ('1', ['A/G'], 'malformed', "'A/G' is not a genotype call"),
    ('1', ['0-1'], 'malformed', "'0-1' is not a genotype call"),
    ('1', ['0/'], 'malformed', "'0/' is not a genotype call"),
    ('1', [''], 'malformed', "'' is not a genotype call"),
  ],
)
def test_bad_calls_name_the_line_or_are_counted_as_missing(tmp_path, chrom, calls, reason, message):
  good = ['0/1', '0/0', '1/1', '0/1', '0/0', '0/1']
  rows = [
    (chrom, 10, 'G', good),
    (chrom, 20, 'G', calls + good[len(calls) :]),
    (chrom, 30, 'G', good),
  ]
  path = _calls_vcf(tmp_path / 'bad.vcf', rows)
  with pytest.raises(
    InputError, match=re.escape(f'bad.vcf:5: {chrom}:20 sample a: genotype {message}')
  ):
    next(sources.open_source('vcf', path).chunks(10))
  chunk = next(sources.open_source('vcf', path).chunks(10, bad_calls='missing'))
  assert chunk.bad_calls == {reason: 1}
  np.testing.assert_array_equal(chunk.dosage_SxN[1], [-1, 0, 2, 1, 0, 1])
  first = _calls_vcf(tmp_path / 'first.vcf', [(chrom, 10, 'G', calls + good[len(calls) :])])
  with pytest.raises(InputError, match=re.escape(f'first.vcf:4: {chrom}:10 sample a')):
    next(sources.open_source('vcf', first).chunks(10))


def bgzf(parts: list[bytes], eof: bool = True) -> bytes:
  """BGZF: one block per part (SAM spec 4.1), then the empty EOF block if `eof`."""
  out = b''
  for payload in parts + ([b''] if eof else []):
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    data = deflate.compress(payload) + deflate.flush()
    out += (
      b'\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x06\x00BC\x02\x00'
      + struct.pack('<H', len(data) + 25)
      + data
      + struct.pack('<II', zlib.crc32(payload), len(payload))
    )
  return out


def test_truncated_gzip_is_input_error(clean_vcf, tmp_path):
  lines = gzip.decompress(open(clean_vcf, 'rb').read()).splitlines(keepends=True)
  half = len(lines) // 2
  parts = [b''.join(lines[:half]), b''.join(lines[half:])]
  whole = tmp_path / 'whole.vcf.gz'
  whole.write_bytes(bgzf(parts))
  assert len(sources.open_source('vcf', str(whole)).samples) == 60
  for name, data in (
    ('block.vcf.gz', bgzf(parts[:1], eof=False)),  # gzip sees no damage
    ('mid.vcf.gz', bgzf(parts)[: len(bgzf(parts)) // 2]),
  ):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(
      InputError, match=f'{name}: no BGZF end-of-file block, so the file is truncated'
    ):
      sources.open_source('vcf', str(path))
  plain = tmp_path / 'plain.vcf.gz'
  plain.write_bytes(gzip.compress(b''.join(lines))[: len(whole.read_bytes()) // 2])
  with pytest.raises(InputError, match='plain.vcf.gz: cannot read'):
    ingest.ingest(sources.open_source('vcf', str(plain)), str(tmp_path / 'o'), 100, 100, _qc())


@needs_plink2
def test_plink_mismatched_fam_is_input_error(clean_vcf, tmp_path):
  prefix = str(tmp_path / 'bed')
  subprocess.run(
    ['plink2', '--vcf', clean_vcf, '--make-bed', '--out', prefix], check=True, capture_output=True
  )
  lines = open(prefix + '.fam').read().splitlines()
  _write(prefix + '.fam', '\n'.join(lines[:-4]) + '\n')  # 56 samples: 14 bytes a SNP, not 15
  with pytest.raises(InputError, match=r'bed\.bed: .* bytes, expected'):
    sources.open_source('plink', prefix)
  with pytest.raises(InputError, match='data.plink: no such file: .*nope.bed'):
    sources.open_source('plink', str(tmp_path / 'nope'))


def test_missing_ids_are_named_and_lowercase_alleles_upper(tmp_path):
  rows = ''.join(f'1\t{p}\t.\ta\tg\t.\t.\t.\tGT\t0|1\t1|1\t0|0\n' for p in (5, 9))
  path = _write(tmp_path / 'ids.vcf', HEADER + rows)
  _, stats, variants, dosage = _ingest(path, tmp_path, min_hwe_p=0.0)
  assert variants.id.tolist() == ['1:5:A:G', '1:9:A:G']
  assert variants.ref.tolist() == ['A', 'A'] and variants.alt.tolist() == ['G', 'G']
  np.testing.assert_array_equal(dosage, [[1, 1], [2, 2], [0, 0]])


def test_genotype_counts_per_group():
  rng = np.random.default_rng(0)
  dosage = rng.integers(-1, 3, size=(37, 101)).astype(np.int8)
  groups = rng.integers(0, 3, size=101) * 7  # ids need not be 0..G-1
  counts = qc.genotype_counts(dosage, groups)
  for g_index, g in enumerate(sorted(set(groups))):
    for value in range(3):
      np.testing.assert_array_equal(
        counts[:, g_index, value], (dosage[:, groups == g] == value).sum(1)
      )


def test_hwe_within_class_keeps_ancestry_informative_snps():
  # 40 people of class 0 homozygous REF, 40 of class 1 homozygous ALT: pooled, no
  # heterozygote at frequency 0.5 (p ~ 1e-23); within each class, monomorphic (p = 1).
  dosage = np.concatenate([np.zeros(40), np.full(40, 2)]).astype(np.int8)[None]
  chunk = qc.RawChunk(
    np.array(['1']),
    np.array([10]),
    np.array(['x']),
    np.array(['A']),
    np.array(['G']),
    np.array([False]),
    dosage,
  )
  groups = np.repeat([0, 1], 40)
  assert qc.qc_chunk(chunk, _qc(), None, groups).keep.tolist() == [True]
  pooled = qc.qc_chunk(chunk, _qc(), None, None)
  assert pooled.keep.tolist() == [False] and pooled.dropped['hwe'] == 1


def test_qc_statistics_and_fill_ignore_samples_outside_train():
  # SNP 1: monomorphic in the 8 train people, common only in the 4 held-out ones
  # (group -1): dropped for MAF. SNP 2: the held-out people carry ALT and have the
  # missing call; the fill value comes from train (0), not from everyone (1).
  dosage = np.array([[0] * 8 + [2, 2, 1, 1], [0, 0, 0, 0, 0, 1, 0, 1] + [2, 2, 2, -1]], np.int8)
  chunk = qc.RawChunk(
    np.array(['1', '1']),
    np.array([10, 20]),
    np.array(['a', 'b']),
    np.array(['A', 'C']),
    np.array(['G', 'T']),
    np.array([False, False]),
    dosage,
  )
  groups = np.array([0] * 8 + [-1] * 4)
  result = qc.qc_chunk(chunk, _qc(min_call_rate=0.9), None, groups)
  assert result.keep.tolist() == [False, True] and result.dropped['maf'] == 1
  assert result.dosage_SxK[0, -1] == 0  # train mean 0.25 -> 0; with everyone 8/11 -> 1
  everyone = qc.qc_chunk(chunk, _qc(min_call_rate=0.9), None, None)
  assert everyone.keep.tolist() == [True, True] and everyone.dosage_SxK[1, -1] == 1


@needs_bcftools
def test_vcf_region_keeps_records_starting_in_it(tmp_path):
  # tabix also returns the deletion at 150, which overlaps 200-300; only POS counts.
  deletion = '1\t150\tdel\t' + 'A' * 60 + '\tA\t.\t.\t.\tGT\t0|1\t1|1\t0|0\n'
  rows = ROW.format(pos=100) + deletion + ROW.format(pos=200) + ROW.format(pos=300)
  path = str(tmp_path / 'r.vcf.gz')
  with writers.BgzfWriter(path) as out:
    out.write((HEADER.replace('##FORMAT', '##contig=<ID=1>\n##FORMAT') + rows).encode())
  index = str(tmp_path / 'r.csi')
  subprocess.run(['bcftools', 'index', '-o', index, path], check=True)
  source = sources.open_source('vcf', path)
  chunks = list(source.chunks(1, region='1:200-300', index=index))
  assert [c.pos.tolist() for c in chunks] == [[200], [300]]
  assert [len(c) for c in source.chunks(10, region='1:101-199', index=index)] == [1]


@needs_plink2
def test_plink_slice_reads_its_rows(clean_vcf, tmp_path):
  prefix = str(tmp_path / 'bed')
  subprocess.run(
    ['plink2', '--vcf', clean_vcf, '--make-bed', '--out', prefix], check=True, capture_output=True
  )
  source = sources.open_source('plink', prefix)
  whole = np.concatenate([c.dosage_SxN for c in source.chunks(1000)])
  part = source.slice(50, 120)
  chunks = list(part.chunks(30))
  assert [len(c) for c in chunks] == [30, 30, 10]
  np.testing.assert_array_equal(np.concatenate([c.dosage_SxN for c in chunks]), whole[50:120])
  np.testing.assert_array_equal(np.concatenate([c.pos for c in chunks]), source.pos[50:120])


def test_header_contig_lengths_and_reference_are_kept(tmp_path):
  path = tmp_path / 'h.vcf'
  path.write_text(
    '##fileformat=VCFv4.2\n'
    '##reference=file:///ref/GRCh38.fa\n'
    '##contig=<ID=chr1,length=248956422,assembly=GRCh38>\n'
    '##contig=<assembly=GRCh38,length=242193529,ID=chr2>\n'
    '##contig=<ID=chrUn>\n'  # no length: not kept
    '##contig=<ID=chr3,URL=ftp://x/?ID=7,length=9,Description="length=5 ID=foo">\n'
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ts1\n'
    'chr1\t10\t.\tA\tG\t.\t.\t.\tGT\t0/1\n'
  )
  source = sources.open_source('vcf', str(path))
  assert source.contigs == [('chr1', 248956422), ('chr2', 242193529), ('chr3', 9)]
  assert source.reference == 'file:///ref/GRCh38.fa'
  assert sources.open_source('vcf', str(path)).samples.tolist() == ['s1']
