"""Tests of gdiff.data.ingest_parallel: region-parallel ingest equals the serial path."""

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
from gdiff.data import ingest_parallel, prepare, simulate, sources, writers
from gdiff.errors import InputError

needs_tools = pytest.mark.skipif(
  not all(shutil.which(t) for t in ('bcftools', 'tabix', 'plink2')),
  reason='bcftools, tabix and plink2 needed',
)


def _qc(**overrides):
  q = base.get_config().data.qc
  q.update(overrides)
  return q


def _bgzip(lines, path):
  with writers.BgzfWriter(str(path)) as out:
    out.write(('\n'.join(lines) + '\n').encode())
  return str(path)


@pytest.fixture(scope='module')
def vcf_lines(tmp_path_factory):
  """A 2-contig simulated VCF (60 samples) plus one record per QC reason, as lines.

  All calls are phased but one heterozygote ('0/1' in record 10).
  """
  s = base.get_config().data.simulate
  s.populations = ('YRI', 'CEU', 'CHB')
  s.samples_per_population = (20, 20, 20)
  s.contig_length = 300_000
  s.max_snps_per_contig = 80
  s.min_maf = 0.02
  vcf, labels, _ = simulate.simulate_to_files(s, str(tmp_path_factory.mktemp('sim')))
  with gzip.open(vcf, 'rt') as f:
    lines = f.read().splitlines()
  head = [x for x in lines if x.startswith('#')]
  body = [x.split('\t') for x in lines if not x.startswith('#')]
  assert len({r[0] for r in body}) == 2
  n = len(body[0]) - 9

  def after(i, ref, alt, calls):
    return [
      body[i][0],
      str(int(body[i][1]) + 1),
      f'extra{i}',
      ref,
      alt,
      '.',
      'PASS',
      '.',
      'GT',
      '\t'.join(calls[k % len(calls)] for k in range(n)),
    ]

  extra = {
    5: after(5, 'A', 'C,G', ['0|1', '1|2']),
    30: after(30, 'AT', 'A', ['0|1']),
    100: after(100, 'G', 'T', ['0|0']),
    120: after(120, 'C', 'T', ['0|1', './.']),
  }
  body[50][9:12] = ['./.', '.|.', '0|.']  # 3 missing calls in a kept SNP
  het = [k for k in range(9, len(body[10])) if body[10][k] in ('0|1', '1|0')][0]
  body[10][het] = body[10][het].replace('|', '/')  # one call of unknown phase, first piece
  out = list(head)
  for i, rec in enumerate(body):
    out.append('\t'.join(rec))
    if i == 70:
      out.append('\t'.join(rec[:2] + ['dup70'] + rec[3:]))
    if i in extra:
      out.append('\t'.join(extra[i]))
  return out, labels


def _run(source, out, workers, chunk=7, shard=13, **kw):
  groups = np.repeat([0, 1, 2], 20)  # HWE within the 3 populations, as prepare does
  stats = ingest_parallel.ingest(
    source, str(out), chunk, shard, _qc(), groups, workers=workers, **kw
  )
  shards = sorted(os.listdir(out / 'shards'))
  assert shards == [f'shard-{k:05d}.h5' for k in range(len(shards))]
  assert [s['file'] for s in stats['shards']] == [f'shards/{s}' for s in shards]
  assert sorted(os.listdir(out)) == ['shards']  # the scratch folder is gone
  c = cohort_lib.Cohort(
    str(out),
    source.samples,
    source.samples,
    None,
    (),
    None,
    tuple(str(out / 'shards' / s) for s in shards),
  )
  hap0 = []
  for path in c.shard_paths:
    with h5py.File(path, 'r') as f:
      hap0.append(f['hap0'][()])
  return stats, c.variants(), c.dosages(), np.concatenate(hap0, axis=1)


def _assert_same(serial, parallel):
  (s_stats, s_var, s_dos, s_hap0), (p_stats, p_var, p_dos, p_hap0) = serial, parallel
  for key in (
    'variants_read',
    'variants_kept',
    'dropped',
    'missing_filled',
    'phased',
    'unphased_het_calls',
  ):
    assert p_stats[key] == s_stats[key], key
  assert list(p_stats) == list(s_stats)  # the manifest lists them in one order
  assert list(p_stats['kept_per_chromosome'].items()) == list(
    s_stats['kept_per_chromosome'].items()
  )
  for field in ('chrom', 'pos', 'id', 'ref', 'alt'):
    np.testing.assert_array_equal(getattr(p_var, field), getattr(s_var, field))
  np.testing.assert_array_equal(p_dos, s_dos)
  np.testing.assert_array_equal(p_hap0, s_hap0)
  assert sum(s['variants'] for s in p_stats['shards']) == s_stats['variants_kept']


@needs_tools
def test_vcf_and_plink_parallel_equal_serial(vcf_lines, tmp_path):
  lines, _ = vcf_lines
  folder = tmp_path / 'in'
  folder.mkdir()
  path = _bgzip(lines, folder / 'c.vcf.gz')
  source = sources.open_source('vcf', path)
  serial = _run(source, tmp_path / 's', 0)
  assert serial[0]['ingest_parallel'] is None
  assert serial[0]['dropped'] == {
    'multiallelic': 1,
    'not_snp': 1,
    'sex_chromosome': 0,
    'duplicate': 1,
    'call_rate': 1,
    'maf': 1,
    'hwe': 0,
  }
  assert serial[0]['missing_filled'] == 3
  assert not serial[0]['phased'] and serial[0]['unphased_het_calls'] == 1  # record 10
  parallel = _run(source, tmp_path / 'p', 2)
  info = parallel[0]['ingest_parallel']
  assert info['workers'] == 2 and info['pieces'] == 6 and info['regions'] == 7
  assert len(parallel[0]['shards']) > len(serial[0]['shards'])  # pieces end in partial shards
  _assert_same(serial, parallel)
  assert os.listdir(folder) == ['c.vcf.gz']  # the index went to scratch, not next to the input

  bcf = str(tmp_path / 'c.bcf')
  subprocess.run(['bcftools', 'view', '-Ob', '-o', bcf, path], check=True)
  _assert_same(serial, _run(sources.open_source('vcf', bcf), tmp_path / 'bcf', 2))

  prefix = str(tmp_path / 'bed')
  subprocess.run(
    [
      'plink2',
      '--vcf',
      path,
      '--vcf-half-call',
      'm',
      '--max-alleles',
      '2',
      '--make-bed',
      '--out',
      prefix,
    ],
    check=True,
    capture_output=True,
  )
  bed = sources.open_source('plink', prefix)
  bed_serial = _run(bed, tmp_path / 'bs', 0)
  bed_parallel = _run(bed, tmp_path / 'bp', 2, regions_per_worker=2)
  assert bed_parallel[0]['ingest_parallel']['pieces'] == 4
  _assert_same(bed_serial, bed_parallel)
  assert not bed_serial[0]['phased']
  # plink2 dropped the multiallelic record (--max-alleles 2); the kept SNPs agree.
  np.testing.assert_array_equal(bed_parallel[2], parallel[2])


@needs_tools
def test_duplicate_at_a_region_boundary_is_dropped(vcf_lines, tmp_path):
  lines, _ = vcf_lines
  head = [x for x in lines if x.startswith('#')]
  body = [x for x in lines if not x.startswith('#') and 'dup70' not in x]
  # Place a duplicate pair so that the middle of 2 equal pieces falls between them.
  cut = round((len(body) + 1) / 2)
  j = cut - 1
  rec = body[j].split('\t')
  body.insert(j + 1, '\t'.join(rec[:2] + ['dupcut'] + rec[3:]))
  path = _bgzip(head + body, tmp_path / 'dup.vcf.gz')
  positions = ingest_parallel.scan_positions(path)
  assert positions.pos_V[cut - 1] == positions.pos_V[cut]  # a naive cut would split them
  cuts = ingest_parallel.plan_cuts(positions, 2)
  assert cuts == [0, cut + 1, len(body)]
  source = sources.open_source('vcf', path)
  serial = _run(source, tmp_path / 's', 0)
  parallel = _run(source, tmp_path / 'p', 2, regions_per_worker=1)
  assert serial[0]['dropped']['duplicate'] == 1
  assert parallel[0]['ingest_parallel']['pieces'] == 2
  _assert_same(serial, parallel)
  assert 'dupcut' not in set(parallel[1].id)


def test_plan_cuts_only_between_positions():
  positions = ingest_parallel.Positions.from_records(
    np.array(['1'] * 6 + ['2'] * 4), np.array([5, 5, 5, 5, 9, 12, 5, 6, 6, 7])
  )
  # Targets 2, 4, 6, 8: 2 moves past the 5s to 4, then 5; 6 starts contig 2; 8 moves to 9.
  assert ingest_parallel.plan_cuts(positions, 5) == [0, 4, 5, 6, 9, 10]
  assert ingest_parallel.plan_cuts(positions, 1) == [0, 10]
  pieces = ingest_parallel.vcf_pieces(positions, [0, 4, 7, 10])
  assert [p.regions for p in pieces] == [('1:5-5',), ('1:9-12', '2:5-5'), ('2:6-7',)]
  unsorted = (np.array(['1', '1', '2', '1']), np.array([1, 2, 3, 4]))
  assert ingest_parallel.Positions.from_records(*unsorted) is None
  assert ingest_parallel.Positions.from_records(np.array(['1', '1']), np.array([5, 4])) is None


@needs_tools
def test_index_next_to_the_file_is_used_when_fresh(vcf_lines, tmp_path):
  lines, _ = vcf_lines
  path = _bgzip(lines, tmp_path / 'c.vcf.gz')
  source = sources.open_source('vcf', path)
  scratch = tmp_path / 'scratch'
  scratch.mkdir()
  index, why, _ = ingest_parallel.find_or_make_index(source, str(scratch))
  assert (index, why) == (str(scratch / 'index.csi'), '') and os.path.isfile(index)
  subprocess.run(['tabix', '-p', 'vcf', path], check=True)
  assert ingest_parallel.find_or_make_index(source, str(scratch))[0] == path + '.tbi'
  os.utime(path, (os.path.getmtime(path) + 10,) * 2)  # the file changed after indexing
  assert ingest_parallel.find_or_make_index(source, str(scratch))[0] == index


def test_plain_vcf_falls_back_to_serial(vcf_lines, tmp_path, caplog):
  lines, _ = vcf_lines
  path = tmp_path / 'plain.vcf'
  path.write_text('\n'.join(lines) + '\n')
  source = sources.open_source('vcf', str(path))
  with caplog.at_level(logging.INFO):
    stats, *_ = _run(source, tmp_path / 'o', 2)
  assert stats['ingest_parallel'] is None
  assert 'serial instead of 2 workers: not a bgzipped VCF' in caplog.text
  assert ingest_parallel.resolve_workers(-1) >= 1 and ingest_parallel.resolve_workers(0) == 0


@needs_tools
def test_errors_are_input_errors(vcf_lines, tmp_path):
  lines, _ = vcf_lines
  bad = list(lines)
  fields = bad[-20].split('\t')
  bad[-20] = '\t'.join(fields[:-1])  # one sample column short, late in contig 2
  path = _bgzip(bad, tmp_path / 'bad.vcf.gz')
  with pytest.raises(InputError, match=r'bad\.vcf\.gz.*: 68 tab-separated fields, expected 69'):
    _run(sources.open_source('vcf', path), tmp_path / 'o', 2)
  # An error inside a worker reaches the caller as the same InputError.
  good = _bgzip(lines, tmp_path / 'good.vcf.gz')
  prefix = str(tmp_path / 'bed')
  subprocess.run(
    [
      'plink2',
      '--vcf',
      good,
      '--vcf-half-call',
      'm',
      '--max-alleles',
      '2',
      '--make-bed',
      '--out',
      prefix,
    ],
    check=True,
    capture_output=True,
  )
  bed = sources.open_source('plink', prefix)
  os.remove(prefix + '.bed')  # gone after the parent read .bim/.fam
  with pytest.raises(InputError, match=r'bed\.bed: cannot open'):
    _run(bed, tmp_path / 'o2', 2)


@needs_tools
def test_prepare_with_workers_matches_serial(tmp_path):
  def cfg(workers):
    d = base.get_config().data
    d.simulate.kind = 'case_control'
    d.simulate.num_samples = 80
    d.simulate.contig_length = 200_000
    d.simulate.max_snps_per_contig = 60
    d.simulate.num_causal = 5
    d.chunk_variants = 16
    d.ingest_workers = workers
    return d

  manifests = [prepare.prepare(cfg(w), str(tmp_path / f'w{w}'), seed=0) for w in (0, 2)]
  assert manifests[0]['ingest_parallel'] is None
  assert manifests[1]['ingest_parallel']['workers'] == 2
  for key in (
    'variants_read',
    'variants_kept',
    'dropped',
    'missing_filled',
    'phased',
    'unphased_het_calls',
    'kept_per_chromosome',
    'samples',
    'classes',
  ):
    assert manifests[0][key] == manifests[1][key], key
  assert manifests[0]['phased']  # simulated cohorts are written phased
  cohorts = [cohort_lib.load_cohort(str(tmp_path / f'w{w}')) for w in (0, 2)]
  np.testing.assert_array_equal(cohorts[0].dosages(), cohorts[1].dosages())
  np.testing.assert_array_equal(cohorts[0].haplotypes(), cohorts[1].haplotypes())
  np.testing.assert_array_equal(cohorts[0].variants().id, cohorts[1].variants().id)
  with open(tmp_path / 'w2' / 'manifest.json') as f:
    assert json.load(f)['config']['ingest_workers'] == 2
  # The worker count changes speed only: the cohort is reused, not refused.
  assert prepare.prepare(cfg(0), str(tmp_path / 'w2'), seed=0) == manifests[1]
  changed = cfg(0)
  changed.chunk_variants = 17
  with pytest.raises(InputError, match='different data config'):
    prepare.prepare(changed, str(tmp_path / 'w2'), seed=0)


@needs_tools
def test_spawn_start_method_gives_the_same_result(vcf_lines, tmp_path, monkeypatch):
  lines, _ = vcf_lines
  source = sources.open_source('vcf', _bgzip(lines, tmp_path / 'c.vcf.gz'))
  serial = _run(source, tmp_path / 's', 0)
  monkeypatch.setattr(ingest_parallel, 'START_METHOD', 'spawn')  # the default off Linux
  spawned = _run(source, tmp_path / 'p', 2, regions_per_worker=1)
  assert spawned[0]['ingest_parallel']['start_method'] == 'spawn'
  _assert_same(serial, spawned)
