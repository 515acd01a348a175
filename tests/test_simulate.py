"""Tests of gdiff.data.simulate: tiny stdpopsim cohorts written as real VCF.gz."""

import gzip
import shutil
import subprocess

import numpy as np
import pytest

from configs import base
from gdiff.data import simulate
from gdiff.errors import InputError


def _sim(**overrides):
  s = base.get_config().data.simulate
  s.populations = ('YRI', 'CEU', 'CHB')
  s.samples_per_population = (20, 25, 15)
  s.num_contigs = 2
  s.contig_length = 300_000
  s.max_snps_per_contig = 150
  s.num_samples = 120
  s.num_causal = 20
  s.update(overrides)
  return s


@pytest.fixture(scope='module')
def populations(tmp_path_factory):
  out = tmp_path_factory.mktemp('pops')
  vcf, labels, info = simulate.simulate_to_files(_sim(), str(out))
  return vcf, labels, info


@pytest.fixture(scope='module')
def case_control(tmp_path_factory):
  out = tmp_path_factory.mktemp('cc')
  return simulate.simulate_to_files(_sim(kind='case_control'), str(out))


def _vcf_lines(path):
  with gzip.open(path, 'rt') as f:
    return f.read().splitlines()


def _table(path):
  rows = [line.split('\t') for line in open(path).read().splitlines()]
  assert rows[0] == ['sample', 'label']
  return rows[1:]


def test_populations_samples_labels_and_ids(populations):
  vcf, labels, info = populations
  rows = _table(labels)
  samples = [r[0] for r in rows]
  assert [r[1] for r in rows] == ['YRI'] * 20 + ['CEU'] * 25 + ['CHB'] * 15
  assert samples[0] == 'YRI0001' and samples[20] == 'CEU0001' and samples[-1] == 'CHB0015'
  assert len(set(samples)) == len(samples)
  assert not any('_' in s for s in samples)
  header = [x for x in _vcf_lines(vcf) if x.startswith('#CHROM')][0].split('\t')
  assert header[9:] == samples
  assert info['samples_per_population'] == {'YRI': 20, 'CEU': 25, 'CHB': 15}


def test_vcf_sites_are_filtered_thinned_and_sorted(populations):
  vcf, _, info = populations
  records = [x.split('\t') for x in _vcf_lines(vcf) if not x.startswith('#')]
  chrom = np.array([r[0] for r in records])
  pos = np.array([int(r[1]) for r in records])
  assert set(chrom) == {'1', '2'}
  for c in ('1', '2'):
    p = pos[chrom == c]
    assert 0 < len(p) <= 150
    assert p.min() >= 1 and np.all(np.diff(p) > 0)
  assert info['num_snps'] == len(records)
  for r in records:
    assert r[3] in 'ACGT' and r[4] in 'ACGT' and len(r[3]) == len(r[4]) == 1 and r[3] != r[4]
  gt = np.array([[int(g[0]) + int(g[2]) for g in r[9:]] for r in records])
  freq = gt.mean(axis=1) / 2
  assert np.all(np.minimum(freq, 1 - freq) >= 0.05)  # simulate.min_maf


def test_vcf_is_bgzf_and_bcftools_reads_it(populations, tmp_path):
  vcf, _, info = populations
  if shutil.which('bcftools') is None or shutil.which('tabix') is None:
    pytest.skip('bcftools/tabix not installed')
  copy = tmp_path / 'c.vcf.gz'
  shutil.copy(vcf, copy)
  subprocess.run(['tabix', '-p', 'vcf', str(copy)], check=True)  # fails unless real BGZF
  out = subprocess.run(
    ['bcftools', 'view', '-H', '-r', '2', str(copy)], check=True, capture_output=True, text=True
  ).stdout
  assert len(out.splitlines()) == info['snps_per_contig']['2']
  count = subprocess.run(
    ['bcftools', 'query', '-l', str(copy)], check=True, capture_output=True, text=True
  ).stdout.split()
  assert len(count) == 60


def test_seeded(populations, tmp_path):
  vcf, _, _ = populations
  again, _, _ = simulate.simulate_to_files(_sim(), str(tmp_path / 'a'))
  other, _, _ = simulate.simulate_to_files(_sim(seed=7), str(tmp_path / 'b'))
  assert _vcf_lines(again) == _vcf_lines(vcf)
  assert _vcf_lines(other) != _vcf_lines(vcf)


def test_case_control_prevalence_and_ids(case_control):
  _, labels, info = case_control
  rows = _table(labels)
  cases = sum(r[1] == 'case' for r in rows)
  assert cases == round(0.31 * 120) == info['num_cases']
  assert {r[1] for r in rows} == {'case', 'control'}
  assert rows[0][0] == 'S00001' and not any('_' in r[0] for r in rows)
  assert len(info['causal']) == 20


def test_liability_threshold_known_answer():
  rng = np.random.default_rng(0)
  dosage_SxN = rng.integers(0, 3, size=(1, 500)).astype(np.int8)
  # h2 = 1 and one causal SNP: liability is a monotone function of its dosage.
  is_case, causal, effects = simulate.liability_phenotype(dosage_SxN, 1, 1.0, 0.2, rng)
  assert is_case.sum() == 100 and causal.tolist() == [0]
  d = dosage_SxN[0] * np.sign(effects[0])
  assert d[is_case].min() >= d[~is_case].max()
  # h2 = 0: cases are independent of genotype (within noise).
  is_case, _, _ = simulate.liability_phenotype(
    np.repeat(dosage_SxN, 5, 0), 5, 0.0, 0.5, np.random.default_rng(1)
  )
  assert abs(dosage_SxN[0][is_case].mean() - dosage_SxN[0][~is_case].mean()) < 0.25


@pytest.mark.parametrize(
  'overrides, option',
  [
    ({'kind': 'nope'}, 'data.simulate.kind'),
    (
      {'populations': ('YRI', 'XXX'), 'samples_per_population': (3, 3)},
      'data.simulate.populations',
    ),
    ({'samples_per_population': (3, 3)}, 'data.simulate.samples_per_population'),
    ({'demography': 'Nope_1'}, 'data.simulate.demography'),
    ({'kind': 'case_control', 'population': 'XXX'}, 'data.simulate.population: XXX'),
    ({'seed': -1}, 'data.simulate.seed'),
  ],
)
def test_bad_config(overrides, option):
  with pytest.raises(InputError, match=option.replace('.', r'\.')):
    simulate.simulate(_sim(**overrides))
