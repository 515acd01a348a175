"""Tests of gdiff.data.splits: label tables and stratified, seeded splits."""

import numpy as np
import pytest

from gdiff.data import splits
from gdiff.errors import InputError

LABELS = np.array(['a'] * 50 + ['b'] * 30 + ['c'] * 7)


def test_stratified_counts_per_class():
  split = splits.stratified_split(LABELS, 0.1, 0.2, seed=3)
  expected = {'a': (35, 5, 10), 'b': (21, 3, 6), 'c': (5, 1, 1)}  # c: round(0.7)=1, round(1.4)=1
  for cls, (train, val, test) in expected.items():
    rows = split[LABELS == cls]
    assert ((rows == 'train').sum(), (rows == 'val').sum(), (rows == 'test').sum()) == (
      train,
      val,
      test,
    ), cls
  assert set(split) == {'train', 'val', 'test'}


def test_seeded_and_shuffled():
  a = splits.stratified_split(LABELS, 0.1, 0.2, seed=3)
  b = splits.stratified_split(LABELS, 0.1, 0.2, seed=3)
  c = splits.stratified_split(LABELS, 0.1, 0.2, seed=4)
  np.testing.assert_array_equal(a, b)
  assert (a != c).any()
  # Shuffled within the class, not its first rows.
  assert np.flatnonzero(a[:50] == 'test').tolist() != list(range(10))


def test_small_class_gets_one_each_or_error():
  split = splits.stratified_split(np.array(['x'] * 3 + ['y'] * 20), 0.1, 0.1, seed=0)
  assert sorted(split[:3]) == ['test', 'train', 'val']
  with pytest.raises(InputError, match="class 'x' has 2 sample"):
    splits.stratified_split(np.array(['x'] * 2 + ['y'] * 20), 0.1, 0.1, seed=0)
  only_train = splits.stratified_split(np.array(['x'] * 1 + ['y'] * 5), 0.0, 0.0, seed=0)
  assert set(only_train) == {'train'}


@pytest.mark.parametrize(
  'val, test, option',
  [
    (-0.1, 0.1, 'data.val_fraction'),
    (0.1, 1.0, 'data.test_fraction'),
    (0.5, 0.5, 'data.val_fraction . data.test_fraction'),
  ],
)
def test_bad_fractions(val, test, option):
  with pytest.raises(InputError, match=option):
    splits.stratified_split(LABELS, val, test, seed=0)


def _tsv(path, rows):
  path.write_text('\n'.join('\t'.join(r) for r in rows) + '\n')
  return str(path)


SAMPLES = np.array(['s1', 's2', 's3', 's4'])


def test_read_labels_in_genotype_order(tmp_path):
  path = _tsv(
    tmp_path / 'l.tsv',
    [
      ('sample', 'x', 'pheno'),
      ('s3', '1', 'case'),
      ('s1', '2', 'control'),
      ('s4', '3', 'case'),
      ('s2', '4', 'control'),
    ],
  )
  labels = splits.read_labels(path, 'pheno', SAMPLES, 'g.vcf')
  assert labels.tolist() == ['control', 'control', 'case', 'case']


@pytest.mark.parametrize(
  'rows, message',
  [
    (
      [('sample', 'label'), ('s1', 'a'), ('s2', 'a'), ('s3', 'b')],
      r'1 sample\(s\) of the genotypes g\.vcf are missing here: s4',
    ),
    (
      [
        ('sample', 'label'),
        ('s1', 'a'),
        ('s2', 'a'),
        ('s3', 'b'),
        ('s4', 'b'),
        ('zz', 'a'),
        ('yy', 'b'),
      ],
      r'2 sample\(s\) not in the genotypes g\.vcf: zz, yy',
    ),
    ([('sample', 'status'), ('s1', 'a')], r"l\.tsv:1: no column 'label'"),
    (
      [('sample', 'label'), ('s1', 'a'), ('s2', 'a'), ('s1', 'b')],
      r'l\.tsv:4: sample s1 repeated \(first on line 2\)',
    ),
    ([('sample', 'label'), ('s1', 'a', 'extra')], r'l\.tsv:2: 3 tab-separated fields'),
    ([('sample', 'label'), ('s1', '')], r"l\.tsv:2: empty 'label'"),
  ],
)
def test_label_errors(tmp_path, rows, message):
  path = _tsv(tmp_path / 'l.tsv', rows)
  with pytest.raises(InputError, match=message):
    splits.read_labels(path, 'label', SAMPLES, 'g.vcf')


def test_missing_label_file():
  with pytest.raises(InputError, match='data.labels: no such file: /nope.tsv'):
    splits.read_labels('/nope.tsv', 'label', SAMPLES, 'g.vcf')


def test_split_file(tmp_path):
  path = _tsv(
    tmp_path / 's.tsv',
    [('sample', 'split'), ('s4', 'test'), ('s1', 'train'), ('s2', 'val'), ('s3', 'train')],
  )
  assert splits.read_split_file(path, SAMPLES, 'g').tolist() == ['train', 'val', 'train', 'test']
  bad = _tsv(tmp_path / 'b.tsv', [('sample', 'split'), ('s1', 'training')])
  with pytest.raises(InputError, match=r"b\.tsv:2: split 'training' is not one of"):
    splits.read_split_file(bad, SAMPLES, 'g')
  with pytest.raises(InputError, match="class 'b' has no train sample"):
    splits.check_split(
      np.array(['a', 'a', 'b', 'b']), np.array(['train', 'val', 'val', 'test']), path
    )


def test_duplicate_genotype_samples():
  with pytest.raises(InputError, match=r'g\.vcf: 2 duplicate sample ID\(s\): a, b'):
    splits.check_samples(['a', 'b', 'a', 'c', 'b'], 'g.vcf')
