"""Tests of the inputs of gdiff.data.sources: PGEN, BGEN refused, several files, X/Y/MT.

Each compares against the same cohort read another way (one VCF vs per-chromosome
files, VCF vs plink2's PGEN of it), so that any difference in dosages, phase,
variants, samples or statistics fails.
"""

import gzip
import json
import logging
import os
import shutil
import subprocess

import h5py
import numpy as np
import pytest

from configs import base
from gdiff.data import cohort as cohort_lib
from gdiff.data import ingest, ingest_parallel, prepare, simulate, sources
from gdiff.errors import InputError

needs_plink2 = pytest.mark.skipif(shutil.which('plink2') is None, reason='plink2 not installed')
needs_bcftools = pytest.mark.skipif(
  shutil.which('bcftools') is None or shutil.which('tabix') is None,
  reason='bcftools/tabix not installed',
)


def _qc(**overrides):
  q = base.get_config().data.qc
  q.update(overrides)
  return q


@pytest.fixture(scope='module')
def cohort(tmp_path_factory):
  """A simulated 2-chromosome cohort: (vcf.gz, labels.tsv), contigs '1' and '2'."""
  s = base.get_config().data.simulate
  s.populations = ('YRI', 'CEU', 'CHB')
  s.samples_per_population = (12, 12, 12)
  s.contig_length = 300_000
  s.max_snps_per_contig = 80
  s.min_maf = 0.02
  vcf, labels, _ = simulate.simulate_to_files(s, str(tmp_path_factory.mktemp('cohort')))
  return vcf, labels


def _split_by_chromosome(vcf: str, folder) -> list[str]:
  """The cohort as one bgzipped VCF per chromosome (same header), chr1 then chr2."""
  with gzip.open(vcf, 'rt') as f:
    lines = f.read().splitlines()
  head = [x for x in lines if x.startswith('#')]
  paths = []
  for chrom in ('1', '2'):
    body = [x for x in lines if not x.startswith('#') and x.split('\t', 1)[0] == chrom]
    path = os.path.join(folder, f'chr{chrom}.vcf')
    with open(path, 'w') as f:
      f.write('\n'.join(head + body) + '\n')
    paths.append(path)
  return paths


def _read(stats: dict, out: str):
  """(variants, dosage N x S, hap0 N x S) of the shards an ingest wrote."""
  dosage, hap0, variants = [], [], []
  for shard in stats['shards']:
    with h5py.File(os.path.join(out, shard['file']), 'r') as f:
      dosage.append(f['dosage'][()])
      hap0.append(f['hap0'][()])
      variants.append(
        cohort_lib.Variants(
          *(f[k][()].astype(str) for k in ('chrom',)),
          f['pos'][()],
          *(f[k][()].astype(str) for k in ('id', 'ref', 'alt')),
        )
      )
  return cohort_lib.Variants.concatenate(variants), np.hstack(dosage), np.hstack(hap0)


def _ingest(source, out, chunk=25, shard=40, workers=0, **kw):
  stats = ingest_parallel.ingest(source, str(out), chunk, shard, _qc(), workers=workers, **kw)
  return stats, _read(stats, str(out))


def _assert_same(a, b):
  (stats_a, (var_a, dos_a, hap_a)), (stats_b, (var_b, dos_b, hap_b)) = a, b
  for key in ('variants_read', 'variants_kept', 'dropped', 'missing_filled', 'phased'):
    assert stats_a[key] == stats_b[key], key
  assert stats_a['kept_per_chromosome'] == stats_b['kept_per_chromosome']
  for name in ('chrom', 'pos', 'id', 'ref', 'alt'):
    np.testing.assert_array_equal(getattr(var_a, name), getattr(var_b, name), err_msg=name)
  np.testing.assert_array_equal(dos_a, dos_b)
  np.testing.assert_array_equal(hap_a, hap_b)


# ------------------------------------------------------------------ PGEN


@needs_plink2
def test_pgen_equals_the_vcf_it_was_made_from(cohort, tmp_path):
  vcf, _ = cohort
  prefix = str(tmp_path / 'p')
  subprocess.run(
    ['plink2', '--vcf', vcf, '--make-pgen', '--out', prefix],
    check=True,
    capture_output=True,
  )
  from_vcf = sources.open_source('vcf', vcf)
  for given in (prefix, prefix + '.pgen', prefix + '.pvar'):
    from_pgen = sources.open_source('pgen', given)
    assert from_pgen.path == prefix
    np.testing.assert_array_equal(from_pgen.samples, from_vcf.samples)
    assert from_pgen.contigs == from_vcf.contigs == [('1', 300_000), ('2', 300_000)]
  vcf_run = _ingest(from_vcf, tmp_path / 'v')
  pgen_run = _ingest(from_pgen, tmp_path / 'p-out')
  assert vcf_run[0]['phased'] and vcf_run[0]['variants_kept'] > 100
  _assert_same(vcf_run, pgen_run)
  _assert_same(vcf_run, _ingest(from_pgen, tmp_path / 'p-par', workers=2))  # sliced by index


@needs_plink2
def test_unphased_pgen_counts_unknown_phase_like_the_vcf(cohort, tmp_path):
  vcf, _ = cohort
  with gzip.open(vcf, 'rt') as f:
    text = f.read().replace('|', '/')  # every call unphased
  unphased = tmp_path / 'u.vcf'
  unphased.write_text(text)
  prefix = str(tmp_path / 'u')
  subprocess.run(
    ['plink2', '--vcf', str(unphased), '--make-pgen', '--out', prefix],
    check=True,
    capture_output=True,
  )
  vcf_stats, (_, vcf_dosage, _) = _ingest(sources.open_source('vcf', str(unphased)), tmp_path / 'a')
  pgen_stats, (_, pgen_dosage, _) = _ingest(sources.open_source('pgen', prefix), tmp_path / 'b')
  assert not pgen_stats['phased']
  assert pgen_stats['unphased_het_calls'] == vcf_stats['unphased_het_calls'] > 0
  np.testing.assert_array_equal(pgen_dosage, vcf_dosage)


@needs_plink2
def test_pgen_that_disagrees_with_its_psam_is_input_error(cohort, tmp_path):
  vcf, _ = cohort
  prefix = str(tmp_path / 'p')
  subprocess.run(
    ['plink2', '--vcf', vcf, '--make-pgen', '--out', prefix], check=True, capture_output=True
  )
  lines = (tmp_path / 'p.psam').read_text().splitlines()
  (tmp_path / 'p.psam').write_text('\n'.join(lines[:-1]) + '\n')  # one sample fewer
  with pytest.raises(InputError, match=r'p\.pgen: cannot open with 35 samples'):
    sources.open_source('pgen', prefix)
  with pytest.raises(InputError, match=r'data\.vcf: .*p\.pgen is part of a plink2 PGEN fileset; '):
    sources.open_source('vcf', prefix + '.pgen')
  with pytest.raises(InputError, match=r'data\.pgen: no such file: .*nope\.pgen'):
    sources.open_source('pgen', str(tmp_path / 'nope'))
  os.rename(tmp_path / 'p.pvar', tmp_path / 'p.pvar.zst')  # as plink2's 'vzs' names it
  with pytest.raises(InputError, match=r'p\.pvar\.zst: a compressed \.pvar is not read'):
    sources.open_source('pgen', prefix)


# ------------------------------------------------------------------ BGEN


@needs_plink2
def test_bgen_is_refused_with_the_command_that_converts_it(cohort, tmp_path):
  vcf, _ = cohort
  out = str(tmp_path / 'b')
  subprocess.run(
    ['plink2', '--vcf', vcf, '--export', 'bgen-1.2', '--out', out],
    check=True,
    capture_output=True,
  )
  message = (
    r'b\.bgen: BGEN input is not read directly; convert it: plink2 --bgen .*b\.bgen '
    r'ref-first --sample (\S*)/b\.sample --make-pgen --out \1/b, then --config\.data\.pgen=\1/b$'
  )
  with pytest.raises(InputError, match=message):
    sources.open_source('vcf', out + '.bgen')
  renamed = tmp_path / 'c.vcf.gz'  # known by its magic number, whatever its name
  shutil.copy(out + '.bgen', renamed)
  with pytest.raises(InputError, match=r'c\.vcf\.gz: BGEN input is not read directly'):
    sources.open_source('vcf', str(renamed))


# ------------------------------------------------------------------ several files


def test_per_chromosome_files_equal_the_whole_file(cohort, tmp_path):
  vcf, _ = cohort
  first, second = _split_by_chromosome(vcf, tmp_path)
  whole = sources.open_source('vcf', vcf)
  expected = _ingest(whole, tmp_path / 'whole')
  for k, value in enumerate([[first, second], f'{first},{second}', str(tmp_path / 'chr*.vcf')]):
    both = sources.open_source('vcf', value)
    assert both.paths == [first, second]
    np.testing.assert_array_equal(both.samples, whole.samples)
    assert both.contigs == whole.contigs and both.num_variants is None
    _assert_same(expected, _ingest(both, tmp_path / f'both{k}'))


def test_glob_order_is_natural_and_files_must_share_their_samples(cohort, tmp_path):
  vcf, _ = cohort
  first, second = _split_by_chromosome(vcf, tmp_path)
  for n in (10, 9):  # chr9 before chr10
    shutil.copy(first, tmp_path / f'chr{n}.vcf')
  assert sources.expand('vcf', str(tmp_path / 'chr*.vcf')) == [
    str(tmp_path / f'chr{n}.vcf') for n in (1, 2, 9, 10)
  ]
  with pytest.raises(InputError, match=r"data\.vcf: no file matches '.*nope\*\.vcf'"):
    sources.expand('vcf', str(tmp_path / 'nope*.vcf'))
  with pytest.raises(InputError, match=r'data\.vcf: .*chr1\.vcf is given twice'):
    sources.expand('vcf', [first, first])

  lines = open(second).read().splitlines()
  header = next(i for i, x in enumerate(lines) if x.startswith('#CHROM'))
  fields = lines[header].split('\t')
  fields[9], fields[10] = fields[10], fields[9]
  swapped = tmp_path / 'swapped.vcf'
  swapped.write_text('\n'.join(lines[:header] + ['\t'.join(fields)] + lines[header + 1 :]) + '\n')
  with pytest.raises(
    InputError,
    match=r'swapped\.vcf: samples differ from the first file \(the same samples in another '
    r'order\); every file must list the same samples in the same order',
  ):
    sources.open_source('vcf', [first, str(swapped)])
  fields[9:] = [f'x{i}' for i in range(len(fields) - 9)]
  other = tmp_path / 'other.vcf'
  other.write_text('\n'.join(lines[:header] + ['\t'.join(fields)] + lines[header + 1 :]) + '\n')
  with pytest.raises(InputError, match=r"other\.vcf: samples differ .*sample 1 is 'x0'"):
    sources.open_source('vcf', [first, str(other)])
  longer = tmp_path / 'longer.vcf'
  longer.write_text(
    open(first).read().replace('##contig=<ID=1,length=300000>', '##contig=<ID=1,length=9>')
  )
  with pytest.raises(InputError, match=r'longer\.vcf: ##contig 1 has length 9, but 300000'):
    sources.open_source('vcf', [first, str(longer)])


def test_a_chromosome_in_two_separated_files_is_refused(cohort, tmp_path):
  vcf, _ = cohort
  first, second = _split_by_chromosome(vcf, tmp_path)
  copy = tmp_path / 'again.vcf'
  shutil.copy(first, copy)
  source = sources.open_source('vcf', [first, second, str(copy)])
  with pytest.raises(InputError, match='chromosome 1 appears in two separate blocks'):
    ingest.ingest(source, str(tmp_path / 'o'), 50, 50, _qc())


@needs_plink2
@pytest.mark.parametrize(
  'kind, make, ext', [('plink', '--make-bed', '.bed'), ('pgen', '--make-pgen', '.pgen')]
)
def test_per_chromosome_filesets_equal_the_whole_fileset(cohort, tmp_path, kind, make, ext):
  vcf, _ = cohort
  for name, chrom in (('all', []), ('chr1', ['--chr', '1']), ('chr2', ['--chr', '2'])):
    subprocess.run(
      ['plink2', '--vcf', vcf, *chrom, make, '--out', str(tmp_path / name)],
      check=True,
      capture_output=True,
    )
  whole = _ingest(sources.open_source(kind, str(tmp_path / 'all')), tmp_path / 'whole')
  both = sources.open_source(kind, str(tmp_path / f'chr*{ext}'))
  assert both.paths == [str(tmp_path / 'chr1'), str(tmp_path / 'chr2')]
  assert both.num_variants == whole[0]['variants_read']
  _assert_same(whole, _ingest(both, tmp_path / 'both'))
  parallel = _ingest(both, tmp_path / 'both-par', workers=2)
  assert parallel[0]['ingest_parallel']['pieces'] >= 4  # pieces in both filesets
  _assert_same(whole, parallel)


@needs_bcftools
def test_per_chromosome_files_in_worker_processes_equal_serial(cohort, tmp_path):
  vcf, _ = cohort
  paths = []
  for path in _split_by_chromosome(vcf, tmp_path):
    subprocess.run(['bgzip', '-f', path], check=True)
    paths.append(path + '.gz')
  source = sources.open_source('vcf', paths)
  serial = _ingest(source, tmp_path / 's')
  parallel = _ingest(source, tmp_path / 'p', workers=2)
  assert parallel[0]['ingest_parallel']['pieces'] >= 4  # pieces in both files
  _assert_same(serial, parallel)


def test_prepare_takes_a_list_and_fingerprints_every_file(cohort, tmp_path):
  vcf, labels = cohort
  first, second = _split_by_chromosome(vcf, tmp_path)
  d = base.get_config().data
  d.vcf, d.labels = f'{first},{second}', labels
  manifest = prepare.prepare(d, str(tmp_path / 'w' / 'data'))
  assert manifest['source']['paths'] == [first, second]
  assert sorted(manifest['inputs']) == ['data.labels', 'data.vcf[0]', 'data.vcf[1]']
  assert manifest['contigs'] == [['1', 300_000], ['2', 300_000]]
  d.vcf = vcf
  whole = prepare.prepare(d, str(tmp_path / 'one' / 'data'))
  assert manifest['kept_per_chromosome'] == whole['kept_per_chromosome']
  assert manifest['dropped'] == whole['dropped']


# ------------------------------------------------------------------ X, Y, MT

_SAMPLES = [f's{i}' for i in range(12)]  # s0-s5 male (haploid X calls), s6-s11 female


def _sex_vcf(path) -> str:
  rng = np.random.default_rng(3)
  lines = [
    '##fileformat=VCFv4.2',
    '##contig=<ID=1,length=10000>',
    '##contig=<ID=X,length=10000>',
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
    '\t'.join(['#CHROM', 'POS', 'ID', 'REF', 'ALT', 'QUAL', 'FILTER', 'INFO', 'FORMAT', *_SAMPLES]),
  ]
  for chrom, n in (('1', 20), ('X', 15)):
    for i in range(n):
      a = rng.integers(0, 2, (12, 2))
      a[:, 0][i % 12] = 1  # every record polymorphic
      calls = [
        f'{x}|{y}' if chrom == '1' or k >= 6 else str(x) for k, (x, y) in enumerate(a.tolist())
      ]
      lines.append(
        '\t'.join([chrom, str(100 + 10 * i), f'{chrom}_{i}', 'A', 'G', '.', '.', '.', 'GT', *calls])
      )
  with open(path, 'w') as f:
    f.write('\n'.join(lines) + '\n')
  return str(path)


def test_sex_chromosomes_are_dropped_counted_and_logged(tmp_path, caplog):
  path = _sex_vcf(tmp_path / 'x.vcf')
  with caplog.at_level(logging.INFO):
    stats, (variants, _, _) = _ingest(sources.open_source('vcf', path), tmp_path / 'o')
  assert stats['dropped']['sex_chromosome'] == 15
  assert stats['dropped']['call_rate'] == 0  # never missing calls dropped as call rate
  assert stats['kept_per_chromosome'] == {'1': 20} and set(variants.chrom) == {'1'}
  assert stats['haploid_calls'] == 0
  assert (
    'dropped 15 chrX/chrY/MT variants: sex chromosomes and mitochondria are not modelled '
    'by default; set data.sex_chromosomes=diploid' in caplog.text
  )


def test_sex_chromosomes_diploid_reads_haploid_calls_as_homozygous(tmp_path, caplog):
  path = _sex_vcf(tmp_path / 'x.vcf')
  with caplog.at_level(logging.INFO):
    stats, (variants, dosage, hap0) = _ingest(
      sources.open_source('vcf', path), tmp_path / 'o', sex_chromosomes='diploid'
    )
  assert stats['dropped']['sex_chromosome'] == 0 and stats['missing_filled'] == 0
  assert stats['kept_per_chromosome'] == {'1': 20, 'X': 15}
  assert stats['haploid_calls'] == 15 * 6
  assert '90 haploid calls on X/Y/MT read as homozygous diploid' in caplog.text
  x = variants.chrom == 'X'
  with open(path) as f:
    rows = [line.rstrip('\n').split('\t') for line in f if line.startswith('X\t')]
  males = np.array([[int(r[9 + k]) for r in rows] for k in range(6)])  # (6, 15) haploid allele
  np.testing.assert_array_equal(dosage[:6, x], 2 * males)
  np.testing.assert_array_equal(hap0[:6, x], males)
  females = np.array([[sum(map(int, r[9 + k].split('|'))) for r in rows] for k in range(6, 12)])
  np.testing.assert_array_equal(dosage[6:, x], females)


def test_prepare_records_sex_chromosomes_in_the_manifest(tmp_path):
  path = _sex_vcf(tmp_path / 'x.vcf')
  labels = tmp_path / 'l.tsv'
  labels.write_text('sample\tlabel\n' + ''.join(f's{i}\t{"AB"[i % 2]}\n' for i in range(12)))
  d = base.get_config().data
  d.vcf, d.labels, d.val_fraction, d.test_fraction = path, str(labels), 0.17, 0.17
  d.qc.min_hwe_p = 0.0
  manifest = prepare.prepare(d, str(tmp_path / 'drop' / 'data'))
  assert manifest['dropped']['sex_chromosome'] == 15
  assert manifest['qc']['sex_chromosomes'] == 'drop'
  d.sex_chromosomes = 'diploid'
  manifest = prepare.prepare(d, str(tmp_path / 'diploid' / 'data'))
  assert manifest['kept_per_chromosome']['X'] == 15 and manifest['haploid_calls'] > 0
  with open(tmp_path / 'diploid' / 'data' / 'manifest.json') as f:
    assert json.load(f)['qc']['sex_chromosomes'] == 'diploid'
  d.sex_chromosomes = 'haploid'
  with pytest.raises(
    InputError, match=r"data\.sex_chromosomes: unknown 'haploid' \(known: drop, diploid\)"
  ):
    prepare.prepare(d, str(tmp_path / 'bad' / 'data'))
