"""Tests for gdiff.evaluate.families, protocol and context: the tables that `evaluate` runs."""

import functools
import json

import evaluate_testdata as td
import numpy as np
import pytest

from configs import base
from gdiff.errors import InputError
from gdiff.evaluate import families, genetics, privacy, protocol, report, run


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
  return td.small_workdir(tmp_path, monkeypatch)


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
  monkeypatch.setattr(
    families,
    'methods',
    lambda ctx: (
      methods(ctx)
      + [
        (
          'mosaic@5',
          functools.partial(families.baseline, ctx, 'mosaic@5', 'mosaic', segment_snps=5.0),
        )
      ]
    ),
  )
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
  values, curves = families.judge(
    ctx, ctx.synthetic, {'utility_hard_pair': (families.hard_pair_metrics,)}
  )
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


def test_the_mosaic_curve_is_one_row_per_segment_length(workdir):
  assert [r[0] for r in families.baseline_rows(base.get_config().evaluate)] == [
    'independent',
    'gaussian',
    'mosaic@25',
    'mosaic@50',
    'mosaic@100',
    'mosaic@200',
    'mosaic@400',
    'resample',
  ]
  c = _config()
  c.evaluate.baselines = ('mosaic', 'independent', 'mosaic@7.5')
  c.evaluate.mosaic_segment_snps = (2, 40)
  assert families.baseline_rows(c.evaluate) == [
    ('mosaic@2', 'mosaic', {'segment_snps': 2.0}),
    ('mosaic@40', 'mosaic', {'segment_snps': 40.0}),
    ('independent', 'independent', {}),
    ('mosaic@7.5', 'mosaic', {'segment_snps': 7.5}),
  ]
  ctx = run.load(c, str(workdir))
  made = {name: make() for name, make in families.methods(ctx)}
  assert list(made) == ['gdiff', 'mosaic@2', 'mosaic@40', 'independent', 'mosaic@7.5']
  assert made['mosaic@2'].name == 'mosaic@2'
  assert not np.array_equal(made['mosaic@2'].dosage_NxS, made['mosaic@40'].dosage_NxS)


@pytest.mark.parametrize(
  'baselines, message',
  [
    (('mosaic@x',), 'must be a number > 0'),
    (('mosaic@0',), 'must be a number > 0'),
    (('independent@5',), 'takes no setting'),
    (('nope@5',), 'unknown'),
    (('mosaic', 'mosaic@25'), 'repeat a name'),
  ],
)
def test_bad_baseline_rows_are_refused_before_any_work(baselines, message):
  c = _config()
  c.evaluate.baselines = baselines
  with pytest.raises(InputError, match=message):
    run.check_config(c.evaluate)


def test_baseline_seeds_keep_the_first_seeds_runs_and_leave_gdiff_alone(workdir):
  def utility(baseline_seeds):
    c = _config()
    c.evaluate.seeds, c.evaluate.baseline_seeds = 2, baseline_seeds
    ctx = run.load(c, str(workdir))
    cohort = families.baseline(ctx, 'independent', 'independent')
    return (
      families.utility_metrics(ctx, cohort)[0]['logreg'],
      families.utility_metrics(ctx, ctx.synthetic)[0]['logreg'],
    )

  (every, gdiff_every), (first, gdiff_first) = utility(0), utility(1)
  assert len(every['recovery']['values']) == 2 and first['recovery']['values'] == pytest.approx(
    every['recovery']['values'][:1], abs=0
  )
  assert first['acc_real'] == every['acc_real']  # the real side keeps every seed
  assert gdiff_first == gdiff_every
