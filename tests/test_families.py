"""Tests for gdiff.evaluate.families, protocol and context: the tables that `evaluate` runs."""

import functools
import json

import evaluate_testdata as td
import numpy as np
import pytest

from configs import base
from gdiff.evaluate import families, genetics, privacy, protocol, report, run

SPLIT = np.array(['train'] * 180 + ['val'] * 50 + ['test'] * 70)


def _config():
  c = base.get_config()
  ev = c.evaluate
  ev.classifiers = ('logreg',)
  ev.seeds = 1
  ev.classifier_steps = 10
  ev.augmentation_classifier = ''
  ev.baselines = ('independent', 'resample')
  ev.block_size = 64
  ev.ld_max_distance_snps = 10
  ev.num_pcs = 4
  return c


@pytest.fixture
def workdir(tmp_path, monkeypatch):
  dosage, labels = td.ld_cohort(300, 80, seed=0)
  syn, syn_labels = td.ld_cohort(120, 80, seed=1)
  td.write_workdir(str(tmp_path), dosage, labels, SPLIT, syn, syn_labels)
  codec = td.FakeCodec.fit(dosage[SPLIT == 'train'])
  monkeypatch.setattr(run, '_load_codec', lambda _: codec)
  return tmp_path


def _counting(monkeypatch, module, name):
  calls = []
  fn = getattr(module, name)

  def counted(*args, **kwargs):
    calls.append(1)
    return fn(*args, **kwargs)
  monkeypatch.setattr(module, name, counted)
  return calls


def test_a_metric_and_a_baseline_drop_in_without_touching_evaluate(workdir, monkeypatch):
  def people(ctx, cohort):  # a new realism metric, with a curve
    return {'people': len(cohort.dosage_NxS)}, {'people_curve': np.arange(3)}

  monkeypatch.setitem(families.FAMILIES, 'realism', families.FAMILIES['realism'] + (people,))
  methods = families.methods
  monkeypatch.setattr(families, 'methods', lambda ctx: methods(ctx) + [
      ('mosaic@5', functools.partial(families.baseline, ctx, 'mosaic@5', 'mosaic',
                                     segment_snps=5.0))])
  reference_fits = _counting(monkeypatch, genetics, 'real_reference')
  privacy_fits = _counting(monkeypatch, privacy, 'make_reference')
  metrics = run.evaluate(_config(), str(workdir))

  assert list(metrics['methods']) == ['gdiff', 'independent', 'resample', 'mosaic@5']
  for m, r in metrics['methods'].items():
    assert r['realism']['people'] == r['num_people'] == 120, m
    assert 'af_r' in r['realism'] and 'aa_truth_holdout' in r['privacy']['genotype']
  assert metrics['checks']['mosaic@5']['privacy.genotype.identical_copies'] is True
  # The real references are built once for all four methods and the reference row.
  assert len(reference_fits) == 1 and len(privacy_fits) == 2  # embedding and genotype
  saved = json.loads((workdir / 'report' / 'metrics.json').read_text())
  assert saved['methods']['mosaic@5']['realism']['people'] == 120
  assert '| mosaic@5 |' in (workdir / 'report' / 'report.md').read_text()


def test_baseline_settings_reach_the_generator(workdir):
  ctx = run.load(_config(), str(workdir))
  # Segments longer than a chromosome: every synthetic chromosome is one training person's.
  whole = families.baseline(ctx, 'mosaic@whole', 'mosaic', segment_snps=1e12)
  train = ctx.dosage['train']
  for chrom in np.unique(ctx.chrom_S):
    cols = ctx.chrom_S == chrom
    same = (whole.dosage_NxS[:, None, cols] == train[None, :, cols]).all(-1)  # (syn, train)
    assert same.any(1).all()
  assert whole.name == 'mosaic@whole' and len(whole.dosage_NxS) == 120
  np.testing.assert_array_equal(whole.emb_NxGxC, ctx.codec.encode(whole.dosage_NxS))
  short = families.baseline(ctx, 'mosaic@1', 'mosaic', segment_snps=1.0)
  assert not (short.dosage_NxS[:, None] == train[None]).all(-1).any()


def test_a_family_that_does_not_apply_is_left_out(workdir):
  ctx = run.load(_config(), str(workdir))
  assert families.hard_pair(ctx) is None  # two classes: no hard pair
  values, curves = families.judge(ctx, ctx.synthetic, {'utility_hard_pair': (
      families.hard_pair_metrics,)})
  assert values == {} and curves == {}
  values, _ = families.judge(ctx, ctx.synthetic, families.STUDIES)  # augmentation off
  assert values == {}


def test_held_out_split_names():
  assert protocol.named('AA_truth {holdout}', 'val') == 'AA_truth val'
  assert protocol.named('DCR < {holdout} p5', 'test') == 'DCR < test p5'
  assert protocol.named('AA_truth {holdout}', 'holdout') == 'AA_truth holdout'  # mixed table
  assert protocol.held_out({}) is protocol.HOLDOUTS['test']  # reports made before the option
  assert protocol.held_out({'holdout': 'val'}).splits == ('train', 'val')
  for path, name, _, _ in report.TARGETS:
    assert '_test' not in path and 'test' not in protocol.named(name, 'val')
