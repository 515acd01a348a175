"""Cohort export (gdiff.export and the writers of gdiff.data.writers), checked by reading the
files back with bcftools, tabix, plink2 and h5py."""

import filecmp
import os
import shutil
import subprocess
import time

import bed_reader
import h5py
import numpy as np
import pytest

from gdiff import export
from gdiff.data import writers
from gdiff.data.cohort import Variants

TOOLS = ('bcftools', 'tabix', 'plink2')
needs_tools = pytest.mark.skipif(
  not all(shutil.which(t) for t in TOOLS), reason='bcftools/tabix/plink2 not on PATH'
)
N, S = 60, 150


def _cohort(seed=0):
  rng = np.random.default_rng(seed)
  freq = rng.uniform(0.05, 0.95, S)
  dosage = rng.binomial(2, freq, (N, S)).astype(np.int8)
  chrom = np.array(['1'] * 100 + ['2'] * 50)
  pos = np.r_[np.arange(1, 101) * 1000, np.arange(1, 51) * 700].astype(np.int64)
  ref = rng.choice(list('AC'), S)
  alt = np.where(ref == 'A', 'G', 'T')
  variants = Variants(
    chrom=chrom, pos=pos, id=np.array([f'rs{i}' for i in range(S)]), ref=ref, alt=alt
  )
  return dosage, variants, export.sample_ids(N)


def _run(*cmd, cwd=None):
  return subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=cwd).stdout


def _plink_freq(args, out):
  _run('plink2', *args, '--freq', '--allow-extra-chr', '--threads', '1', '--out', out)
  lines = open(out + '.afreq').read().splitlines()
  header = lines[0].split('\t')
  rows = [dict(zip(header, line.split('\t'))) for line in lines[1:]]
  return rows


def test_sample_ids():
  assert export.sample_ids(3).tolist() == ['SYN000001', 'SYN000002', 'SYN000003']
  assert export.sample_ids(1_234_567)[-1] == 'SYN1234567'


@needs_tools
@pytest.mark.parametrize('threads', [1, 3])
def test_vcf_read_back_by_bcftools_and_tabix(tmp_path, monkeypatch, threads):
  dosage, variants, samples = _cohort()
  dosage[3, 7] = -1  # missing
  path = str(tmp_path / 'x.vcf.gz')
  monkeypatch.setattr(writers, 'VCF_BLOCK_BYTES', 4 * N * 16)  # several text blocks
  writers.write_vcf(path, dosage, variants, samples, threads=threads)
  # renamed into place with its index, nothing left over
  assert sorted(os.listdir(tmp_path)) == ['x.vcf.gz', 'x.vcf.gz.tbi']
  stats = _run('bcftools', 'stats', path)
  assert f'number of samples:\t{N}\n' in stats
  assert f'number of records:\t{S}\n' in stats
  assert f'number of SNPs:\t{S}\n' in stats
  # Region query through gdiff's own index (tabix reads it): chromosome 2 only.
  assert len(_run('tabix', path, '2').splitlines()) == 50
  assert _run('bcftools', 'query', '-l', path).split() == list(samples)
  gt = _run('bcftools', 'query', '-f', '[%GT\t]\n', path).splitlines()
  table = {'0/0': 0, '0/1': 1, '1/1': 2, './.': -1}
  got = np.array([[table[g] for g in line.rstrip('\t').split('\t')] for line in gt]).T
  np.testing.assert_array_equal(got, dosage)
  header = _run('bcftools', 'view', '-h', path)
  assert '##contig=<ID=1,length=100000>' in header
  assert '##contig=<ID=2,length=35000>' in header


@needs_tools
def test_plink_and_vcf_freq_equal_our_alt_frequencies(tmp_path):
  dosage, variants, samples = _cohort(1)
  dosage.flags.writeable = False  # as np.asarray of a jax array
  paths = export.write_cohort(
    str(tmp_path), dosage, variants, samples, ['a'] * N, ['a'], formats=('vcf', 'plink')
  )
  assert sorted(os.path.basename(p) for p in paths) == [
    'synthetic.bed',
    'synthetic.bim',
    'synthetic.fam',
    'synthetic.vcf.gz',
    'synthetic.vcf.gz.tbi',
  ]
  ours = dosage.mean(0) / 2
  prefix = str(tmp_path / 'synthetic')
  for args in (['--bfile', prefix], ['--vcf', prefix + '.vcf.gz']):
    rows = _plink_freq(args, str(tmp_path / 'freq'))
    assert [r['ID'] for r in rows] == list(variants.id)
    assert [r['ALT'] for r in rows] == list(variants.alt)
    assert [r['REF'] for r in rows] == list(variants.ref)
    np.testing.assert_allclose([float(r['ALT_FREQS']) for r in rows], ours, atol=1e-6)
  with bed_reader.open_bed(prefix + '.bed') as bed:
    np.testing.assert_array_equal(bed.read(dtype='int8'), dosage)
    assert list(bed.iid) == list(samples)


def test_h5_contents(tmp_path):
  dosage, variants, samples = _cohort(2)
  emb = np.random.default_rng(0).normal(size=(N, 4, 2)).astype(np.float32)
  labels = np.array(['case', 'control'])[np.arange(N) % 2]
  export.write_cohort(
    str(tmp_path),
    dosage,
    variants,
    samples,
    labels,
    ('case', 'control'),
    emb_NxGxC=emb,
    formats=('h5', 'labels'),
  )
  with h5py.File(tmp_path / 'synthetic.h5') as f:
    np.testing.assert_array_equal(f['dosage'][()], dosage)
    np.testing.assert_array_equal(f['emb'][()], emb)
    assert f['samples'].asstr()[()].tolist() == list(samples)
    assert f['labels'].asstr()[()].tolist() == list(labels)
    np.testing.assert_array_equal(f['label_ids'][()], np.arange(N) % 2)
    assert f.attrs['classes'] == '["case", "control"]'
  lines = open(tmp_path / 'synthetic.labels.tsv').read().splitlines()
  assert lines[0] == 'sample\tlabel' and lines[1] == 'SYN000001\tcase' and len(lines) == N + 1


def test_same_input_same_bytes(tmp_path):
  dosage, variants, samples = _cohort(3)
  emb = np.ones((N, 2, 2), np.float32)
  for name in ('a', 'b'):
    export.write_cohort(
      str(tmp_path / name), dosage, variants, samples, ['x'] * N, ['x'], emb_NxGxC=emb
    )
    time.sleep(1.1)  # a timestamp in any header would now differ
  names = sorted(os.listdir(tmp_path / 'a'))
  assert len(names) == 8
  match, mismatch, errors = filecmp.cmpfiles(tmp_path / 'a', tmp_path / 'b', names, shallow=False)
  assert not mismatch and not errors, mismatch


def test_hdf5_dataset_streams_to_the_same_files(tmp_path):
  # Chunk width 16 < S: the writers see 10 slabs; the bytes must equal the in-memory path.
  dosage, variants, samples = _cohort(4)
  dosage[5, 20] = -1  # missing
  with h5py.File(tmp_path / 'd.h5', 'w') as f:
    f.create_dataset('dosage', data=dosage, chunks=(8, 16))
  with h5py.File(tmp_path / 'd.h5', 'r') as f:
    assert len(list(writers.column_slabs(f['dosage']))) == 10
    export.write_cohort(
      str(tmp_path / 'h5'),
      f['dosage'],
      variants,
      samples,
      ['a'] * N,
      ['a'],
      formats=('vcf', 'plink'),
    )
  export.write_cohort(
    str(tmp_path / 'np'), dosage, variants, samples, ['a'] * N, ['a'], formats=('vcf', 'plink')
  )
  names = ['synthetic.vcf.gz', 'synthetic.bed', 'synthetic.bim', 'synthetic.fam']
  _, mismatch, errors = filecmp.cmpfiles(tmp_path / 'h5', tmp_path / 'np', names, shallow=False)
  assert not mismatch and not errors
  with bed_reader.open_bed(tmp_path / 'np' / 'synthetic.bed') as bed:
    got = bed.read(dtype='float32')
  assert np.isnan(got[5, 20])
  np.testing.assert_array_equal(np.nan_to_num(got, nan=-1), dosage)


@needs_tools
def test_case_control_cohort_is_gwas_ready_in_plink2(tmp_path):
  """The .fam carries 1/2 for a case/control label, the .pheno.tsv reads in plink2 --pheno."""
  dosage, variants, samples = _cohort(2)
  labels = np.where(np.arange(N) % 3 == 0, 'Case', 'control')  # names in any case
  paths = export.write_cohort(
    str(tmp_path),
    dosage,
    variants,
    samples,
    labels,
    ['Case', 'control'],
    formats=('plink', 'labels'),
  )
  assert sorted(os.path.basename(p) for p in paths)[-2:] == [
    'synthetic.labels.tsv',
    'synthetic.pheno.tsv',
  ]
  fam = [line.split() for line in open(tmp_path / 'synthetic.fam')]
  assert [row[5] for row in fam] == ['2' if y == 'Case' else '1' for y in labels]
  pheno = open(tmp_path / 'synthetic.pheno.tsv').read().splitlines()
  assert pheno[0] == '#FID\tIID\tlabel' and pheno[1] == f'{samples[0]}\t{samples[0]}\t2'
  prefix = str(tmp_path / 'synthetic')
  for extra in ([], ['--pheno', prefix + '.pheno.tsv']):
    _run(
      'plink2',
      '--bfile',
      prefix,
      *extra,
      '--glm',
      'allow-no-covars',
      '--allow-extra-chr',
      '--threads',
      '1',
      '--out',
      str(tmp_path / 'gwas'),
    )
    name = 'gwas.PHENO1.glm.logistic.hybrid' if not extra else 'gwas.label.glm.logistic.hybrid'
    rows = open(tmp_path / name).read().splitlines()
    assert len(rows) == S + 1  # one test per SNP


def test_other_labels_are_categorical_phenotypes(tmp_path):
  samples = ['a', 'b', 'c']
  writers.write_pheno(str(tmp_path / 'p.tsv'), samples, ['YRI', 'CEU', 'YRI'], ['CEU', 'YRI'])
  assert open(tmp_path / 'p.tsv').read() == '#FID\tIID\tlabel\na\ta\tYRI\nb\tb\tCEU\nc\tc\tYRI\n'
  assert writers.plink_phenotype(['x', 'y'], ['x', 'y']) is None
  # Numbers would read as a trait, spaces would split the column: plink2 categories instead.
  writers.write_pheno(str(tmp_path / 'n.tsv'), ['a', 'b'], ['0', '2'], ['0', '1', '2'])
  assert open(tmp_path / 'n.tsv').read().splitlines()[1:] == ['a\ta\tc0', 'b\tb\tc2']
  writers.write_pheno(str(tmp_path / 's.tsv'), ['a'], ['East Asia'], ['East Asia', 'Africa'])
  assert open(tmp_path / 's.tsv').read().splitlines()[1] == 'a\ta\tEast_Asia'
  np.testing.assert_array_equal(writers.plink_phenotype(['1', '0'], ['0', '1']), ['2', '1'])
