"""Tests for evaluate.holdout (gdiff.evaluate.run): with 'val' the test split is never read."""

import importlib.util
import json
import os
import re
import types

import evaluate_testdata as td
import numpy as np
import pytest

from configs import base
from gdiff import pipeline
from gdiff import workdir as wd
from gdiff.data import cohort as cohort_lib
from gdiff.errors import InputError
from gdiff.evaluate import classifiers, run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N, S = 300, 80
SPLIT = np.array(['train'] * 180 + ['val'] * 50 + ['test'] * 70)


def _config(holdout):
  c = base.get_config()
  ev = c.evaluate
  ev.holdout = holdout
  ev.classifiers = ('logreg',)
  ev.seeds = 1
  ev.classifier_steps = 20
  ev.augmentation_fractions = (0.5,)
  ev.augmentation_classifier = 'logreg'
  ev.baselines = ('independent',)
  ev.block_size = 64
  ev.ld_max_distance_snps = 10
  ev.num_pcs = 4
  return c


def _write(path, dosage, labels, split, classes=('a', 'b')):
  syn, syn_labels = td.ld_cohort(120, S, seed=1, num_classes=len(classes))
  td.write_workdir(str(path), dosage, labels, split, syn, syn_labels, classes)


def _evaluate(monkeypatch, codec, holdout, path) -> str:
  """run.evaluate with the fake codec; returns metrics.json as written, less its provenance
  (the workdir's path, the date and file hashes differ between copies by design)."""
  monkeypatch.setattr(run, '_load_codec', lambda _: codec)
  run.evaluate(_config(holdout), str(path))
  metrics = json.loads((path / 'report' / 'metrics.json').read_text())
  assert metrics.pop('provenance')['workdir'] == str(path)
  return json.dumps(metrics, indent=1)


def test_holdout_val_never_reads_test_genotypes(tmp_path, monkeypatch):
  classes = ('a', 'b', 'c')  # three classes, so the hard-pair path runs too
  dosage, labels = td.ld_cohort(N, S, seed=0, num_classes=3)
  _write(tmp_path, dosage, labels, SPLIT, classes)
  codec = td.FakeCodec.fit(dosage[SPLIT == 'train'])
  reads = []
  iter_shards = cohort_lib.Cohort.iter_shards

  def spy(self, rows=None):
    reads.append(rows)
    return iter_shards(self, rows)

  monkeypatch.setattr(cohort_lib.Cohort, 'iter_shards', spy)
  metrics = json.loads(_evaluate(monkeypatch, codec, 'val', tmp_path))
  test_rows = np.flatnonzero(SPLIT == 'test')
  assert reads and all(r is not None for r in reads)
  assert not any(np.isin(r, test_rows).any() for r in reads)

  assert metrics['holdout'] == 'val'
  assert metrics['hard_pair'] and 'utility_hard_pair' in metrics['methods']['gdiff']
  # Accuracy (and the majority rate) come from the report half of val.
  labels_val = labels[SPLIT == 'val']
  select, report_rows = classifiers.stratified_halves(labels_val, _config('val').seed)
  sets = metrics['classifier_sets']
  assert (sets['num_select'], sets['num_report']) == (len(select), len(report_rows)) == (25, 25)
  majority = np.bincount(labels_val[report_rows]).max() / 25
  assert metrics['majority_acc_holdout'] == pytest.approx(majority)
  assert metrics['splits'] == {'train': 180, 'val': 50, 'test': 70}
  assert any('test split was not read' in n for n in metrics['notes'])
  md = (tmp_path / 'report' / 'report.md').read_text()
  html = (tmp_path / 'report' / 'report.html').read_text()
  assert md.startswith('## gdiff evaluation (held-out split: val)')
  assert '<title>gdiff evaluation (held-out split: val)</title>' in html
  assert '| real val (reference) |' in md and 'the test split was not read' in html
  # Tables name the held-out split; no metric key says test ('test' alone is the split).
  assert '| AA_truth val [0.4–0.6] | AA_syn val [0.4–0.6] |' in md and 'AA_truth test' not in md
  assert [t['name'] for t in metrics['targets']][2:4] == ['AA_truth val', 'AA_syn val']
  keys = set()
  _keys(metrics, keys)
  assert 'aa_truth_holdout' in keys and 'dcr_share_below_holdout_p5' in keys
  assert not [k for k in keys if re.search(r'^test_|_test_|_test$', k)]


def _keys(node, out):
  """Every dict key in a metrics tree, the path keys of `checks` split at the dots."""
  if isinstance(node, dict):
    for k, v in node.items():
      out.update(k.split('.'))
      _keys(v, out)
  elif isinstance(node, list):
    for v in node:
      _keys(v, out)


def test_holdout_val_ignores_the_test_split_and_uses_val_where_test_was(tmp_path, monkeypatch):
  dosage, labels = td.ld_cohort(N, S, seed=0)
  codec = td.FakeCodec.fit(dosage[SPLIT == 'train'])  # train only: the same in every copy
  test = SPLIT == 'test'
  changed_dosage, changed_labels = dosage.copy(), labels.copy()
  changed_dosage[test] = 2 - dosage[test]
  changed_labels[test] = 1 - labels[test]
  swapped = np.where(SPLIT == 'val', 'test', np.where(test, 'val', SPLIT))
  dirs = {name: tmp_path / name for name in ('orig', 'changed', 'swapped')}
  _write(dirs['orig'], dosage, labels, SPLIT)
  _write(dirs['changed'], changed_dosage, changed_labels, SPLIT)
  _write(dirs['swapped'], dosage, labels, swapped)

  # Changing every test person changes nothing that holdout='val' writes ...
  val_orig = _evaluate(monkeypatch, codec, 'val', dirs['orig'])
  assert _evaluate(monkeypatch, codec, 'val', dirs['changed']) == val_orig
  # ... though holdout='test' sees the change.
  test_orig = json.loads(_evaluate(monkeypatch, codec, 'test', dirs['orig']))
  test_changed = json.loads(_evaluate(monkeypatch, codec, 'test', dirs['changed']))
  assert test_orig['holdout'] == 'test'
  assert test_orig['reference']['realism']['af_r'] != test_changed['reference']['realism']['af_r']
  assert (
    test_orig['methods']['gdiff']['privacy']['embedding']['aa_truth_holdout']
    != test_changed['methods']['gdiff']['privacy']['embedding']['aa_truth_holdout']
  )

  # Privacy and realism with holdout='val' are exactly those of holdout='test' when the
  # val people are the test split: val took test's place everywhere (all of val).
  val_orig = json.loads(val_orig)
  as_test = json.loads(_evaluate(monkeypatch, codec, 'test', dirs['swapped']))
  assert val_orig['reference'] == as_test['reference']
  for method in ('gdiff', 'independent'):
    for section in ('privacy', 'realism'):
      assert val_orig['methods'][method][section] == as_test['methods'][method][section]
  # Classifiers differ: val is halved (select / report), test was not.
  assert val_orig['classifier_sets'] == {
    'select': 'val (select half)',
    'report': 'val (report half)',
    'num_select': 25,
    'num_report': 25,
  }
  assert as_test['classifier_sets']['num_report'] == 50
  # Same keys as a holdout='test' report (bench/quality.py reads them by name).
  assert set(val_orig) == set(as_test)
  assert set(val_orig['methods']['gdiff']) == set(as_test['methods']['gdiff'])


def test_stratified_halves_balance_every_class_and_the_total():
  y = np.random.default_rng(0).permutation(np.repeat([0, 1, 2, 3], 3))  # odd per class
  select, report_rows = classifiers.stratified_halves(y, seed=0)
  assert len(select) == len(report_rows) == 6  # odd classes alternate their extra person
  np.testing.assert_array_equal(np.sort(np.concatenate([select, report_rows])), np.arange(12))
  assert np.all(np.diff(select) > 0) and np.all(np.diff(report_rows) > 0)
  for c in range(4):
    assert sorted([np.sum(y[select] == c), np.sum(y[report_rows] == c)]) == [1, 2]
  y = np.array([0] * 5 + [1] * 4 + [2])
  select, report_rows = classifiers.stratified_halves(y, seed=3)
  assert len(select) == len(report_rows) == 5
  assert [np.sum(y[select] == 1), np.sum(y[report_rows] == 1)] == [2, 2]
  again = classifiers.stratified_halves(y, seed=3)
  np.testing.assert_array_equal(again[0], select)
  other = classifiers.stratified_halves(np.repeat([0, 1], 20), seed=4)[0]
  assert not np.array_equal(other, classifiers.stratified_halves(np.repeat([0, 1], 20), 5)[0])


def test_check_config_rejects_an_unknown_holdout(tmp_path):
  c = _config('train')
  with pytest.raises(InputError) as err:
    run.check_config(c.evaluate)
  message = str(err.value)
  assert "evaluate.holdout='train'" in message and "'test', 'val'" in message
  assert '\n' not in message
  for holdout in ('test', 'val'):
    run.check_config(_config(holdout).evaluate)
  with pytest.raises(InputError, match='evaluate.holdout'):  # before any stage starts
    pipeline.run(c, str(tmp_path / 'w'), 'all')
  assert not (tmp_path / 'w').exists()


def test_a_new_holdout_reruns_the_evaluate_stage(tmp_path):
  c = base.get_config()
  assert c.evaluate.holdout == 'test'
  for stage in ('prepare', 'sample', 'evaluate'):
    wd.mark_done(c, str(tmp_path), stage)
  assert wd.check(c, str(tmp_path), 'evaluate')
  c.evaluate.holdout = 'val'
  assert wd.sections(c, 'evaluate')['evaluate']['holdout'] == 'val'
  assert not wd.check(c, str(tmp_path), 'evaluate')  # not done: evaluate runs again


def _quality():
  spec = importlib.util.spec_from_file_location(
    'quality', os.path.join(ROOT, 'bench', 'quality.py')
  )
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_quality_sweep_judges_every_point_on_its_holdout():
  quality = _quality()
  args = types.SimpleNamespace(
    config=os.path.join(ROOT, 'configs', 'als.py'), holdout='val', full={'default'}
  )
  for i, name in enumerate(('default', 'ddim_eta1')):
    assert quality.point_config(args, i, name, {}).evaluate.holdout == 'val'
  override = {'evaluate.holdout': 'test'}
  assert quality.point_config(args, 0, 'default', override).evaluate.holdout == 'test'
  rows = [
    {
      'point': p,
      'train': {},
      'sample': {},
      'seconds': 1.0,
      'metrics': {'holdout': h, 'methods': {'gdiff': {}}},
    }
    for p, h in (('default', 'val'), ('ddim_eta1', 'val'))
  ]
  records, md = quality.table(rows)
  assert md.startswith('Held-out split: **val** (evaluate.holdout) for every point;')
  assert '| AA_truth val | AA_syn val |' in md and 'AA_truth val' in records[0]
  rows[1]['metrics']['holdout'] = 'test'
  records, md = quality.table(rows)
  assert 'mixed!' in md and '| AA_truth holdout | AA_syn holdout |' in md


def _method(mia, ld, aa_truth, detection):
  return {
    'privacy': {
      'genotype': {'mia_auc': mia},
      'embedding': {'aa_truth_holdout': aa_truth, 'aa_syn_holdout': 0.5, 'mia_auc': mia},
    },
    'realism': {
      'ld_r2_corr': ld,
      'detection_auc': detection,
      'detection_auc_se': 0.02,
      'pca_two_sample_auc': 0.5,
    },
  }


def test_quality_table_and_plot_judge_each_point_against_the_mosaic_curve(tmp_path):
  quality = _quality()
  curve = {
    'mosaic@25': _method(0.52, 0.80, 0.8, 0.80),
    'mosaic@100': _method(0.62, 0.98, 0.6, 0.62),
  }
  first = {
    'holdout': 'val',
    'methods': {'gdiff': _method(0.57, 0.95, 0.55, 0.6), **curve},
    'reference': {'realism': {'detection_auc': 0.51, 'detection_auc_se': 0.03}},
  }
  second = {'holdout': 'val', 'methods': {'gdiff': _method(0.57, 0.85, 0.55, 0.6)}}
  rows = [
    {'point': p, 'train': {}, 'sample': {}, 'seconds': 1.0, 'metrics': m}
    for p, m in (('default', first), ('ddim_eta1', second))
  ]
  records, md = quality.table(rows)
  by = {r['method']: r for r in records}
  # At membership AUC 0.57 the curve has LD 0.89, AA_truth 0.7, detection 0.71.
  assert by['gdiff default']['vs mosaic'] == 'yes'
  assert by['gdiff ddim_eta1']['vs mosaic'] == 'no: LD r² corr'  # 0.85 < 0.89
  assert by['real val (reference)']['detection AUC'] == 0.51
  assert '| detection AUC | detection SE |' in md and '| mosaic@25 |' in md
  quality.plot(records, str(tmp_path / 'frontier.png'), 'test', 'val')
  assert (tmp_path / 'frontier.png').stat().st_size > 10_000
