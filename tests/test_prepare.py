"""Tests of gdiff.data.prepare: simulate -> ingest -> split into the cohort format."""

import json
import os
import shutil
import subprocess

import allel
import numpy as np
import pytest

from configs import base
from gdiff import workdir as wd
from gdiff.data import cohort as cohort_lib
from gdiff.data import prepare
from gdiff.errors import InputError


def _data_cfg(**overrides):
  d = base.get_config().data
  s = d.simulate
  s.kind = 'case_control'
  s.num_samples = 100
  s.contig_length = 300_000
  s.max_snps_per_contig = 120
  s.num_causal = 10
  d.update(overrides)
  return d


@pytest.fixture(scope='module')
def simulated(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp('w') / 'data')
  return data_dir, prepare.prepare(_data_cfg(), data_dir, seed=0)


def test_simulated_cohort_layout(simulated):
  data_dir, manifest = simulated
  assert sorted(os.listdir(data_dir)) == [
    wd.MARKER,
    'cohort.h5',
    'manifest.json',
    'shards',
    'source',
    'splits.tsv',
  ]
  assert sorted(os.listdir(os.path.join(data_dir, 'source'))) == [
    'cohort.vcf.gz',
    'cohort.vcf.gz.tbi',
    'labels.tsv',
  ]
  assert os.listdir(os.path.dirname(data_dir)) == ['data']  # no temporary left
  with open(os.path.join(data_dir, 'manifest.json')) as f:
    assert json.load(f) == manifest
  c = cohort_lib.load_cohort(data_dir)
  assert c.classes == ('case', 'control')
  assert manifest['samples']['per_class'] == {'case': 31, 'control': 69}
  assert manifest['samples']['per_split'] == {'train': 80, 'val': 10, 'test': 10}
  assert manifest['source']['simulated'] and manifest['source']['path'].startswith(
    os.path.abspath(data_dir)
  )
  dosage = c.dosages()
  assert dosage.shape == (100, manifest['variants_kept']) and dosage.dtype == np.int8
  assert manifest['variants_read'] == manifest['variants_kept'] + sum(manifest['dropped'].values())
  assert set(np.unique(dosage)) <= {0, 1, 2}
  v = c.variants()
  assert (np.diff(v.pos[v.chrom == '1']) > 0).all()
  assert sorted(
    c.indices('train').tolist() + c.indices('val').tolist() + c.indices('test').tolist()
  ) == list(range(100))


def test_simulated_cohort_is_phased_and_reads_as_haplotypes(simulated):
  data_dir, manifest = simulated
  assert manifest['phased'] is True and manifest['unphased_het_calls'] == 0
  c = cohort_lib.load_cohort(data_dir)
  assert c.phased
  haps = c.haplotypes()
  assert haps.shape == (100, 2, manifest['variants_kept']) and haps.dtype == np.int8
  np.testing.assert_array_equal(haps.sum(axis=1), c.dosages())
  # Known answer: the phased GT of the simulated VCF, as scikit-allel reads it.
  cs = allel.read_vcf(
    os.path.join(data_dir, 'source', 'cohort.vcf.gz'), fields=['variants/ID', 'calldata/GT']
  )
  row = {i: k for k, i in enumerate(cs['variants/ID'])}
  gt_SxNx2 = cs['calldata/GT'][[row[i] for i in c.variants().id]]
  np.testing.assert_array_equal(haps, gt_SxNx2.transpose(1, 2, 0))
  assert (haps[:, 0] != haps[:, 1]).any()  # heterozygotes, in both orders
  assert ((haps[:, 0] == 1) & (haps[:, 1] == 0)).any()
  train = c.haplotypes('train')
  np.testing.assert_array_equal(train, haps[c.indices('train')])


@pytest.mark.skipif(shutil.which('plink2') is None, reason='plink2 not installed')
def test_plink_cohort_is_unphased(simulated, tmp_path):
  data_dir, phased = simulated
  prefix = str(tmp_path / 'bed')
  subprocess.run(
    [
      'plink2',
      '--vcf',
      os.path.join(data_dir, 'source', 'cohort.vcf.gz'),
      '--make-bed',
      '--out',
      prefix,
    ],
    check=True,
    capture_output=True,
  )
  out = str(tmp_path / 'w' / 'data')
  manifest = prepare.prepare(
    _data_cfg(plink=prefix, labels=os.path.join(data_dir, 'source', 'labels.tsv')), out
  )
  c = cohort_lib.load_cohort(out)
  assert manifest['phased'] is False and not c.phased
  assert manifest['variants_kept'] == phased['variants_kept']
  assert manifest['unphased_het_calls'] == int((c.dosages() == 1).sum()) > 0
  with pytest.raises(InputError, match='the cohort is not phased .* as genotypes only'):
    c.haplotypes()


def test_a_cohort_of_the_format_before_phase_is_refused(tmp_path):
  data_dir = tmp_path / 'data'
  data_dir.mkdir()
  (data_dir / wd.MARKER).write_text(json.dumps({'folder': 'data', 'format': 2}))
  (data_dir / cohort_lib.MANIFEST_FILE).write_text(json.dumps({'complete': True}))
  with pytest.raises(
    InputError,
    match=r'data: made by an older gdiff \(format 2\); use a new '
    r'--workdir \(nothing was deleted\)',
  ):
    prepare.prepare(_data_cfg(), str(data_dir))
  assert sorted(os.listdir(data_dir)) == [wd.MARKER, cohort_lib.MANIFEST_FILE]


def test_reuse_and_refuse(simulated):
  data_dir, manifest = simulated
  stamp = os.path.getmtime(os.path.join(data_dir, 'cohort.h5'))
  assert prepare.prepare(_data_cfg(), data_dir, seed=0) == manifest
  assert os.path.getmtime(os.path.join(data_dir, 'cohort.h5')) == stamp
  with pytest.raises(InputError, match='different data config'):
    prepare.prepare(_data_cfg(split_seed=5), data_dir, seed=0)
  assert os.path.getmtime(os.path.join(data_dir, 'cohort.h5')) == stamp


def test_partial_data_dir_is_refused_not_deleted(tmp_path):
  data_dir = tmp_path / 'data'
  data_dir.mkdir()
  (data_dir / 'x').write_text('mine')
  with pytest.raises(InputError, match='a folder that gdiff did not write is in the way'):
    prepare.prepare(_data_cfg(), str(data_dir), seed=0)
  assert (data_dir / 'x').read_text() == 'mine'
  (data_dir / wd.MARKER).write_text(json.dumps({'folder': 'data', 'format': wd.FORMAT}))
  with pytest.raises(InputError, match='holds no complete cohort'):
    prepare.prepare(_data_cfg(), str(data_dir), seed=0)
  assert sorted(os.listdir(data_dir)) == [wd.MARKER, 'x']


def test_user_vcf_with_split_file_and_failure_leaves_nothing(simulated, tmp_path):
  data_dir, _ = simulated
  vcf = os.path.join(data_dir, 'source', 'cohort.vcf.gz')
  labels = os.path.join(data_dir, 'source', 'labels.tsv')
  samples = [r.split('\t')[0] for r in open(labels).read().splitlines()[1:]]
  wanted = ['test' if i % 5 == 0 else 'val' if i % 5 == 1 else 'train' for i in range(len(samples))]
  split_file = tmp_path / 'split.tsv'
  split_file.write_text(
    'sample\tsplit\n' + ''.join(f'{s}\t{x}\n' for s, x in reversed(list(zip(samples, wanted))))
  )
  out = str(tmp_path / 'w' / 'data')
  manifest = prepare.prepare(_data_cfg(vcf=vcf, labels=labels, split_file=str(split_file)), out)
  c = cohort_lib.load_cohort(out)
  assert c.samples.tolist() == samples and c.split.tolist() == wanted
  assert manifest['split'] == str(split_file) and not manifest['source']['simulated']
  assert not os.path.exists(os.path.join(out, 'source'))
  cfg = _data_cfg(vcf=vcf, labels=labels, split_file=str(split_file))
  assert prepare.prepare(cfg, out) == manifest  # reused
  split_file.write_text(split_file.read_text().replace('\tval\n', '\ttrain\n', 1))
  with pytest.raises(
    InputError,
    match=r'input .*split\.tsv \(data\.split_file\) changed '
    r'since',
  ):
    prepare.prepare(cfg, out)  # fixed in place under the same name: never reused silently

  bad = tmp_path / 'bad.tsv'
  bad.write_text('sample\tlabel\n' + ''.join(f'{s}\tx\n' for s in samples[:-1]))
  with pytest.raises(InputError, match='1 sample'):
    prepare.prepare(_data_cfg(vcf=vcf, labels=str(bad)), str(tmp_path / 'v' / 'data'))
  assert os.listdir(tmp_path / 'v') == []


@pytest.mark.parametrize(
  'overrides, message',
  [
    ({'vcf': 'a.vcf', 'plink': 'b'}, 'data.vcf and data.plink are both set'),
    ({'plink': 'b'}, 'data.labels: required with data.plink'),
    ({'labels': 'l.tsv'}, 'data.labels is set but none of'),
    ({'shard_variants': 0}, 'data.shard_variants: must be >= 1'),
    ({'qc': {'hwe_within': 'nope'}}, "data.qc.hwe_within: unknown 'nope'"),
    ({'qc': {'min_call_rate': 1.5}}, r'data.qc.min_call_rate: must be in \[0.0, 1.0\]'),
  ],
)
def test_bad_config_names_the_option(tmp_path, overrides, message):
  cfg = _data_cfg()
  cfg.update(overrides)
  with pytest.raises(InputError, match=message):
    prepare.prepare(cfg, str(tmp_path / 'data'))
  assert os.listdir(tmp_path) == []
