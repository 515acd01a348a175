"""Tests for gdiff.evaluate.report and the evaluate stage end to end (gdiff.evaluate.run)."""

import json
import os

import evaluate_testdata as td
import h5py
import numpy as np
import pytest

from configs import base
from gdiff.errors import InputError
from gdiff.evaluate import families, protocol, report, run


def test_checks_compare_with_targets():
  r = {'privacy': {'embedding': {'aa_truth_holdout': 0.55, 'privacy_loss': 0.05},
                   'genotype': {'identical_copies': 0, 'dcr_share_below_holdout_p5': 0.06,
                                'num_synthetic': 1000}},
       'realism': {'af_r': float('nan')}}
  assert report.check(r, 'privacy.embedding.aa_truth_holdout', 'within', (0.4, 0.6)) is True
  assert report.check(r, 'privacy.embedding.privacy_loss', '<=', 0.02) is False
  assert report.check(r, 'privacy.genotype.identical_copies', '==', 0) is True
  # 0.06 is within two binomial standard errors of 5% for 1000 people (limit 0.0638).
  assert report.check(r, 'privacy.genotype.dcr_share_below_holdout_p5', 'dcr', 0.05) is True
  assert report.check(r, 'realism.af_r', '>=', 0.99) is None
  assert report.check(r, 'utility.recovery_min', '>=', 0.95) is None


def _workdir(tmp_path, synthetic='fresh', classes=('a', 'b')):
  dosage, labels = td.ld_cohort(300, 80, seed=0)
  split = np.array(['train'] * 180 + ['val'] * 50 + ['test'] * 70)
  if synthetic == 'fresh':
    syn, syn_labels = td.ld_cohort(120, 80, seed=1)  # same distribution, new people
  else:
    syn, syn_labels = dosage[:120].copy(), labels[:120].copy()  # copies of train people
  td.write_workdir(str(tmp_path), dosage, labels, split, syn, syn_labels, classes)
  return td.FakeCodec.fit(dosage[split == 'train'])


def _config():
  c = base.get_config()
  ev = c.evaluate
  ev.classifiers = ('logreg',)
  ev.seeds = 1
  ev.classifier_steps = 20
  ev.augmentation_fractions = (0.5,)
  ev.augmentation_classifier = 'logreg'
  ev.baselines = ('independent', 'resample')
  ev.block_size = 64
  ev.ld_max_distance_snps = 10
  ev.num_pcs = 4
  return c


def test_evaluate_end_to_end(tmp_path, monkeypatch):
  codec = _workdir(tmp_path)
  monkeypatch.setattr(run, '_load_codec', lambda path: codec)
  metrics = run.evaluate(_config(), str(tmp_path))
  out = tmp_path / 'report'
  for name in ('metrics.json', 'report.html', 'report.md', 'pca.png', 'ld_decay.png',
               'af_scatter.png', 'dcr.png', 'augmentation.png'):
    assert (out / name).exists(), name
  saved = json.loads((out / 'metrics.json').read_text())
  assert set(saved['methods']) == {'gdiff', 'independent', 'resample'}
  assert saved['paper']['recovery']['ALS']['mlp']['recovery'] == 0.9426
  gdiff, indep, copies = (metrics['methods'][m] for m in ('gdiff', 'independent', 'resample'))
  # The leak reference is flagged; a fresh sample from the same distribution is not.
  assert copies['privacy']['genotype']['identical_copies'] == 120
  assert metrics['checks']['resample']['privacy.genotype.identical_copies'] is False
  assert gdiff['privacy']['genotype']['identical_copies'] == 0
  assert copies['privacy']['genotype']['mia_auc'] > gdiff['privacy']['genotype']['mia_auc']
  # Independent SNPs lose the LD that the fresh sample keeps (per-class frequencies
  # keep only the weak between-class LD, hence not ~0 here).
  assert gdiff['realism']['ld_r2_corr'] > 0.9 > 0.6 > indep['realism']['ld_r2_corr']
  assert 0 < gdiff['utility']['logreg']['recovery']['mean'] <= 1.5
  assert len(metrics['augmentation']['real_only']) == 1
  html = (out / 'report.html').read_text()
  assert 'data:image/png;base64,' in html and 'resample' in html
  md = (out / 'report.md').read_text()
  assert '| gdiff |' in md and '| AA_truth test [0.4–0.6] |' in md  # the held-out split's name


def test_evaluate_rejects_a_synthetic_cohort_with_other_classes(tmp_path, monkeypatch):
  codec = _workdir(tmp_path)
  monkeypatch.setattr(run, '_load_codec', lambda path: codec)
  with h5py.File(tmp_path / 'samples' / 'synthetic.h5', 'a') as f:
    f.attrs['classes'] = json.dumps(['x', 'y'])
  with pytest.raises(InputError, match='synthetic.h5: classes'):
    run.evaluate(_config(), str(tmp_path))


def test_evaluate_rejects_unknown_baseline(tmp_path, monkeypatch):
  codec = _workdir(tmp_path)
  monkeypatch.setattr(run, '_load_codec', lambda path: codec)
  c = _config()
  c.evaluate.baselines = ('nope',)
  with pytest.raises(InputError, match='evaluate.baselines'):
    run.evaluate(c, str(tmp_path))
  assert not os.path.exists(tmp_path / 'report' / 'metrics.json')


def test_hard_pair_is_the_lowest_fst_pair():
  fst = np.array([[0, 0.2, 0.3], [0.2, 0, 0.01], [0.3, 0.01, 0]])
  assert protocol.hard_pair(fst) == (1, 2)
  assert protocol.hard_pair(fst[:2, :2]) is None  # two classes: the task itself
  x, y = protocol.restrict(np.arange(5)[:, None], np.array([0, 1, 2, 2, 1]), (1, 2))
  np.testing.assert_array_equal(x[:, 0], [1, 2, 3, 4])
  np.testing.assert_array_equal(y, [0, 1, 1, 0])


def test_cap_rows_subsamples_only_above_the_cap():
  np.testing.assert_array_equal(families.cap_rows(5, 0, 0), np.arange(5))
  np.testing.assert_array_equal(families.cap_rows(5, 9, 0), np.arange(5))
  rows = families.cap_rows(50, 10, [0, 1])
  assert len(rows) == len(set(rows)) == 10 and np.all(np.diff(rows) > 0)
  np.testing.assert_array_equal(rows, families.cap_rows(50, 10, [0, 1]))
