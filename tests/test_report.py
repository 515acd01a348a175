"""Tests for gdiff.evaluate.report and the evaluate stage end to end (gdiff.evaluate.run)."""

import hashlib
import json
import os

import evaluate_testdata as td
import h5py
import numpy as np
import pytest

from configs import base
from gdiff.errors import InputError
from gdiff.evaluate import families, glossary, gwas, protocol, report, run


def test_checks_compare_with_targets():
  r = {
    'privacy': {
      'embedding': {'aa_truth_holdout': 0.55, 'privacy_loss': 0.05},
      'genotype': {
        'identical_copies': 0,
        'dcr_share_below_holdout_p5': 0.06,
        'num_synthetic': 1000,
      },
    },
    'realism': {'af_r': float('nan')},
  }
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
  ev.baselines = ('independent', 'resample', 'mosaic')
  ev.mosaic_segment_snps = (2, 40)
  ev.block_size = 64
  ev.ld_max_distance_snps = 10
  ev.num_pcs = 4
  return c


def test_evaluate_end_to_end(tmp_path, monkeypatch):
  codec = _workdir(tmp_path)
  monkeypatch.setattr(run, '_load_codec', lambda path: codec)
  metrics = run.evaluate(_config(), str(tmp_path))
  out = tmp_path / 'report'
  for name in (
    'metrics.json',
    'report.html',
    'report.md',
    'pca.png',
    'ld_decay.png',
    'af_scatter.png',
    'dcr.png',
    'augmentation.png',
    'ld_distance.png',
    'ld_maf.png',
    'mosaic_curve.png',
  ):
    assert (out / name).exists(), name
  saved = json.loads((out / 'metrics.json').read_text())
  assert list(saved['methods']) == ['gdiff', 'independent', 'resample', 'mosaic@2', 'mosaic@40']
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
  # Detection: a fresh draw and real train (the reference row) pass for the held-out
  # people; the independent sampler, which lost LD, does not.
  for r in (gdiff, metrics['reference']):
    det = r['realism']
    assert abs(det['detection_auc'] - 0.5) < 3 * det['detection_auc_se'], det
    assert det['detection_n'] == 70  # min(test, the judged side)
  assert indep['realism']['detection_auc'] > 0.9
  assert metrics['checks']['independent']['realism.detection_auc'] is False
  # LD by distance and by MAF, for every row and both real splits, in metrics.json.
  for curve in ('ld_distance', 'ld_maf'):
    rows = saved['ld_curves'][curve]['mean_r2']
    assert set(rows) == {'real train', 'real holdout', *saved['methods']}
    assert len(rows['gdiff']) == len(saved['ld_curves'][curve]['edges']) - 1
  dom = saved['dominance']
  assert dom['method'] == 'gdiff' and set(dom['axes']) == {p for p, *_ in report.CURVE_AXES}
  assert len(metrics['augmentation']['real_only']) == 1
  html = (out / 'report.html').read_text()
  assert 'data:image/png;base64,' in html and 'resample' in html
  md = (out / 'report.md').read_text()
  assert '| gdiff |' in md and '| AA_truth test [0.4–0.6] |' in md  # the held-out split's name
  assert ' detection AUC [≤ 0.6] |' in md and 'Mosaic curve: gdiff ' in md
  # The verdict comes first, figures have captions, provenance names the cohort judged.
  assert md.splitlines()[2].startswith('**Verdict.** Realism: ')
  for png in out.glob('*.png'):
    assert f'*{png.stem}*: {glossary.caption(png.stem, "test")}' in md, png.stem
    assert glossary.caption(png.stem, 'test') in html.replace('&#x27;', "'"), png.stem
  assert '### Glossary' in md and '### Provenance' in md
  prov = saved['provenance']
  assert prov['synthetic_file'] == str(tmp_path / 'samples' / 'synthetic.h5')
  # The hash the VCF header carries, of the config saved beside the report.
  saved_config = json.loads((out / 'config.json').read_text())
  text = json.dumps(saved_config, sort_keys=True, separators=(',', ':'))
  assert prov['config_hash'] == hashlib.sha256(text.encode()).hexdigest()[:16]
  # Genotype-space utility and the GWAS, next to the other rows and the reference row.
  for m in saved['methods'].values():
    assert set(m['utility_genotype']) == {'logreg', 'hgb', 'recovery_min', 'recovery_mean'}
  assert 'Utility on genotypes (scikit-learn' in md
  if gwas.skip_reason(('a', 'b')) is None:
    assert saved['methods']['gdiff']['gwas']['direction_agreement'] > 0.8
    assert 'direction_agreement' in saved['reference']['gwas']
  ref_row = next(line for line in md.splitlines() if line.startswith('| real test (reference)'))
  assert ref_row.endswith(
    f'{metrics["reference"]["realism"]["detection_auc"]:.3f} ± '
    f'{metrics["reference"]["realism"]["detection_auc_se"]:.3f} |'
  )


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


def _point(mia, ld, aa_truth, detection):
  return {
    'privacy': {'genotype': {'mia_auc': mia}, 'embedding': {'aa_truth_holdout': aa_truth}},
    'realism': {'ld_r2_corr': ld, 'detection_auc': detection},
  }


def test_dominance_reads_the_mosaic_curve_at_gdiffs_membership_auc():
  methods = {
    'gdiff': _point(0.6, 0.9, 0.55, 0.7),
    'mosaic@100': _point(0.7, 0.98, 0.52, 0.6),  # listed out of order on purpose
    'mosaic@25': _point(0.5, 0.6, 0.9, 0.9),
    'mosaic@x': _point(0.6, 0.0, 0.0, 0.0),  # not a segment length: not on the curve
    'resample': _point(0.6, 0.0, 0.0, 0.0),
  }
  assert report.curve_rows(methods) == [(25.0, 'mosaic@25'), (100.0, 'mosaic@100')]
  dom = report.dominance(methods)
  # Halfway along the curve: LD 0.79, AA_truth 0.71, detection 0.75.
  want = {
    'realism.ld_r2_corr': 0.79,
    'privacy.embedding.aa_truth_holdout': 0.71,
    'realism.detection_auc': 0.75,
  }
  for path, curve in want.items():
    assert dom['axes'][path]['curve'] == pytest.approx(curve)
    assert dom['axes'][path]['outcome'] == 'beats'
  assert dom['position'] == 'inside' and dom['dominates'] is True
  assert 'gdiff dominates it' in report.dominance_line(dom, 'test')

  methods['gdiff'] = _point(0.6, 0.7, 0.55, 0.8)  # detection 0.8: more detectable than 0.75
  dom = report.dominance(methods)
  assert dom['axes']['realism.ld_r2_corr']['outcome'] == 'loses'
  assert dom['axes']['realism.detection_auc']['outcome'] == 'loses'
  assert 'detection AUC 0.800 vs 0.750 (lower, chance 0.5: loses)' in report.dominance_line(
    dom, 'test'
  )
  assert not dom['dominates'] and 'does not dominate' in report.dominance_line(dom, 'test')

  # Less private than every mosaic: the curve's faithful end is all there is to compare
  # with, which flatters gdiff, so it never counts as dominating.
  methods['gdiff'] = _point(0.8, 1.0, 0.5, 0.5)
  dom = report.dominance(methods)
  assert dom['position'] == 'above'
  assert all(a['outcome'] == 'beats' for a in dom['axes'].values())
  assert not dom['dominates']
  assert report.dominance({'gdiff': methods['gdiff']}) is None  # no curve


def test_a_detection_auc_below_chance_is_chance_not_a_loss():
  """A held-out detection AUC under 0.5 is noise (two real samples give 0.488 on ALS): it
  compares as 0.5, so it beats a curve above chance and ties a curve at or below it."""
  methods = {
    'mosaic@50': _point(0.48, 0.93, 1.0, 0.51),
    'mosaic@100': _point(0.52, 0.97, 0.98, 0.50),
  }
  methods['gdiff'] = _point(0.47, 0.997, 0.99, 0.49)  # below the curve: its end, mosaic@50
  dom = report.dominance(methods)
  assert dom['position'] == 'below'
  assert dom['axes']['realism.detection_auc']['outcome'] == 'beats'  # 0.5 against 0.51
  assert dom['dominates']
  methods['mosaic@50'] = _point(0.48, 0.93, 1.0, 0.497)
  dom = report.dominance(methods)
  assert dom['axes']['realism.detection_auc']['outcome'] == 'ties'
  assert dom['dominates']  # no axis lost, LD and AA_truth beaten
  assert '(lower, chance 0.5: ties)' in report.dominance_line(dom, 'test')
  methods['gdiff'] = _point(0.47, 0.93, 1.0, 0.49)  # ties on every axis: does not dominate
  assert not report.dominance(methods)['dominates']
