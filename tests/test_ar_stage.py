"""The ar generator through the pipeline's stages: fit, choose the context, sample, export."""

import gzip
import json
import os
import shutil
import subprocess

import allel
import h5py
import numpy as np
import pytest

from configs import kg1
from gdiff import pipeline
from gdiff.errors import InputError


def _config(**ar):
  c = kg1.get_config()
  s = c.data.simulate
  s.samples_per_population = (12, 12, 12, 12)
  s.num_contigs = 2
  s.contig_length = 200_000
  s.max_snps_per_contig = 40
  c.ar.context_snps = (1, 4)
  c.ar.max_iter = 30
  c.ar.block_snps = 16
  c.ar.update(ar)
  return c


@pytest.fixture(scope='module')
def haplotype_run(tmp_path_factory):
  w = str(tmp_path_factory.mktemp('w'))
  for mode in ('prepare', 'train', 'sample'):
    pipeline.run(_config(), w, mode)
  return w


def test_fit_keeps_the_context_with_the_best_val_likelihood(haplotype_run):
  with open(os.path.join(haplotype_run, 'checkpoints', 'ar', 'fit.json')) as f:
    fit = json.load(f)
  assert fit['unit'] == 'haplotype' and fit['num_snps'] == 80
  assert fit['num_sequences'] == 2 * 40  # train: 80 % of 48 people, two haplotypes each
  lls = {c['context_snps']: c['val_log_likelihood'] for c in fit['candidates']}
  assert set(lls) == {1, 4} and fit['context_snps'] == max(lls, key=lls.get)
  with open(os.path.join(haplotype_run, 'stages', 'train.json')) as f:
    assert json.load(f)['ar_context_snps'] == fit['context_snps']


def test_haplotypes_are_written_phased_and_read_back(haplotype_run):
  out = os.path.join(haplotype_run, 'samples')
  with h5py.File(os.path.join(out, 'synthetic.h5')) as f:
    dosage, hap0 = f['dosage'][()], f['hap0'][()]
    gt, phased, pos = f['calldata/GT'][()], f['calldata/GT'].attrs['phased'], f['variants/POS'][()]
  hap1 = dosage - hap0
  # scikit-allel's layout in the same file: (variants, samples, ploidy), phased as written.
  assert phased and gt.shape == (80, 40, 2)
  np.testing.assert_array_equal(gt[:, :, 0].T, hap0)
  np.testing.assert_array_equal(allel.GenotypeArray(gt).to_n_alt().T, dosage)
  assert set(np.unique(hap0)) <= {0, 1} and set(np.unique(hap1)) <= {0, 1}
  assert dosage.shape == (40, 80) and 0 < dosage.mean() < 2
  with open(os.path.join(out, 'manifest.json')) as f:
    manifest = json.load(f)
  assert manifest['generator'] == 'ar'
  vcf = allel.read_vcf(os.path.join(out, 'synthetic.vcf.gz'), fields=['calldata/GT'])
  np.testing.assert_array_equal(
    allel.read_vcf(os.path.join(out, 'synthetic.vcf.gz'), fields=['variants/POS'])['variants/POS'],
    pos,
  )
  gt = vcf['calldata/GT']  # (S, N, 2)
  np.testing.assert_array_equal(gt[:, :, 0].T, hap0)
  np.testing.assert_array_equal(gt[:, :, 1].T, hap1)
  if shutil.which('bcftools'):
    first = subprocess.run(
      ['bcftools', 'query', '-f', '[%GT ]\n', os.path.join(out, 'synthetic.vcf.gz')],
      check=True,
      capture_output=True,
      text=True,
    ).stdout.split('\n')[0]
    assert all('|' in call for call in first.split())
    # Indexed: a region query answers without a separate `bcftools index`.
    region = subprocess.run(
      ['bcftools', 'view', '-H', '-r', '1', os.path.join(out, 'synthetic.vcf.gz')],
      check=True,
      capture_output=True,
      text=True,
    ).stdout.splitlines()
    assert len(region) == 40 and all(line.startswith('1\t') for line in region)
  with gzip.open(os.path.join(out, 'synthetic.vcf.gz'), 'rt') as f:
    header = [line.strip() for line in f if line.startswith('##')]
  assert header[2].startswith('##syntheticData=every sample in this file is synthetic')
  assert '##gdiffGenerator=ar' in header and any(h.startswith('##gdiffVersion=') for h in header)
  # The input's contig lengths (the simulated contigs of 200 kb), not the largest position.
  assert [h for h in header if h.startswith('##contig')] == [
    '##contig=<ID=1,length=200000>',
    '##contig=<ID=2,length=200000>',
  ]
  assert any('context_snps=' in h for h in header if h.startswith('##gdiffSampler='))


def test_genotype_unit_writes_unphased_and_refits(haplotype_run, tmp_path):
  w = str(tmp_path / 'g')
  shutil.copytree(
    haplotype_run, w, ignore=shutil.ignore_patterns('checkpoints', 'logs', 'samples', 'train.json')
  )
  os.remove(os.path.join(w, 'stages', 'sample.json'))
  c = _config(unit='genotype', context_snps=(3,))
  pipeline.run(c, w, 'train')
  pipeline.run(c, w, 'sample')
  with open(os.path.join(w, 'checkpoints', 'ar', 'fit.json')) as f:
    assert json.load(f)['unit'] == 'genotype'
  with h5py.File(os.path.join(w, 'samples', 'synthetic.h5')) as f:
    assert 'hap0' not in f and set(np.unique(f['dosage'][()])) <= {0, 1, 2}
  vcf = allel.read_vcf(os.path.join(w, 'samples', 'synthetic.vcf.gz'), fields=['calldata/GT'])
  assert vcf['calldata/GT'].shape == (80, 40, 2)
  with gzip.open(os.path.join(w, 'samples', 'synthetic.vcf.gz'), 'rt') as f:
    body = [line for line in f if not line.startswith('#')]
  assert '/' in body[0] and not any('|' in line for line in body)


def test_the_python_api_draws_the_stages_people_and_more(haplotype_run):
  from gdiff import api

  model = api.load(haplotype_run)
  assert model.unit == 'haplotype' and len(model.variants) == 80
  with h5py.File(os.path.join(haplotype_run, 'samples', 'synthetic.h5')) as f:
    stage_dosage, stage_labels = f['dosage'][()], f['labels'].asstr()[()]
  dosage, labels = model.sample(40, seed=0, batch_size=7)  # the stage's size, seed and people
  np.testing.assert_array_equal(dosage, stage_dosage)
  assert labels.tolist() == stage_labels.tolist()
  other, other_labels = model.sample(0, class_counts={'YRI': 3, 'CEU': 2}, seed=5)
  assert other.shape == (5, 80) and sorted(other_labels.tolist()) == ['CEU'] * 2 + ['YRI'] * 3
  with pytest.raises(InputError, match=r"class_counts \['XXX'\]"):
    model.sample(0, class_counts={'XXX': 1})


def test_the_python_api_refuses_what_it_cannot_load(tmp_path):
  from gdiff import api

  with pytest.raises(InputError, match='no finished train stage'):
    api.load(str(tmp_path))
