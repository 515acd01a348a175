"""Tests for gdiff.evaluate.verdict, glossary and genotype_utility."""

import json

import evaluate_testdata as td
import numpy as np
import pytest

from gdiff.evaluate import genotype_utility, glossary, verdict


def _row(ld=0.99, det=0.51, det_se=0.02, mia=0.5, mia_se=0.02, rec=0.97, rec_sd=0.01):
  return {
    'realism': {'ld_r2_corr': ld, 'detection_auc': det, 'detection_auc_se': det_se},
    'privacy': {'genotype': {'mia_auc': mia, 'mia_auc_se': mia_se, 'identical_copies': 0}},
    'utility': {
      'logreg': {'recovery': {'mean': rec, 'sd': rec_sd}},
      'recovery_min': rec,
    },
  }


def _metrics(gdiff, independent):
  return {
    'holdout': 'test',
    'methods': {'gdiff': gdiff, 'independent': independent},
    'reference': {'realism': {'detection_auc': 0.5}},
    'dominance': None,
  }


def test_verdict_says_realism_privacy_and_utility_in_words():
  m = _metrics(_row(), _row(ld=0.2, det=0.99, rec=0.9))
  text = verdict.verdict(m)
  assert text.startswith('Realism: it keeps the LD')
  assert 'as hard to tell from real people as another real sample' in text
  assert 'no membership signal' in text and 'recovery (embedding classifiers) 0.970' in text
  m['methods']['gdiff'] = _row(ld=0.5, det=0.9, mia=0.7)
  text = verdict.verdict(m)
  assert 'only partly keeps' in text and 'easily told apart' in text
  assert 'training people can be recognised' in text


def test_guarantees_say_dp_and_gate_when_present():
  m = _metrics(_row(), _row())
  assert verdict.guarantees(m) == []
  m['dp'] = {'epsilon': 3.0, 'delta': 1e-5}
  m['gate'] = {'checked': 1000, 'rejected': 4, 'rule': 'no one closer than the 5th percentile'}
  said = verdict.guarantees(m)
  assert said[0] == 'Training was differentially private with ε = 3, δ = 1e-05.'
  assert said[1].startswith('The release gate checked 1000 synthetic people and withheld 4')
  assert said[1] in verdict.verdict(m)
  m['gate'] = {'mode': 'strict'}  # fields it does not know are listed
  assert verdict.guarantees(m)[1] == 'Release gate: mode=strict.'


def _attacks(lr=0.5, homer=0.5, distance=0.5, se=0.02):
  kin = {'people': 100, 'with_duplicate': 0, 'with_first_degree': 1, 'with_second_degree': 3}
  return {
    'num_members': 100,
    'num_non_members': 100,
    'af_lr': {'auc': lr, 'auc_se': se},
    'af_homer': {'auc': homer, 'auc_se': se},
    'distance': {'auc': distance, 'auc_se': se},
    'kinship': {'holdout': dict(kin), 'synthetic': {**kin, 'with_first_degree': 0}},
    'gate': {'enabled': True, 'replaced_people': 2, 'distance_rule': 'd < 9'}
    | {'kinship_rule': 'off'},
  }


def test_privacy_verdict_says_what_was_tested_passed_and_not_covered():
  m = _metrics(_row(), _row())
  assert verdict.privacy_verdict(m) == ''  # no attacks run
  m['attacks'] = _attacks()
  text = verdict.privacy_verdict(m)
  assert 'allele-frequency likelihood ratio (Sankararaman) 0.500 ± 0.020' in text
  assert 'No attack tells members from held-out people' in text
  assert '0 of 100 synthetic people are duplicates or first-degree' in text
  assert '(1 of 100 real held-out people, the reference)' in text
  assert 'The release gate replaced 2 synthetic people' in text
  assert 'KING over-reads' not in text  # no span given
  m['attacks']['kinship']['span_mb'] = 4.0
  assert 'on 4.0 Mb of autosomes KING over-reads' in verdict.privacy_verdict(m)
  assert 'No differential-privacy guarantee' in text and 'No test here covers' in text
  m['attacks'] = _attacks(homer=0.62)
  m['dp'] = {'epsilon': 3.0, 'delta': 1e-5}
  text = verdict.privacy_verdict(m)
  assert 'Failed (AUC above 0.55 and 2 SE from chance): allele-frequency distance (Homer).' in text
  assert 'Differential privacy holds for the generator fit: ε = 3, δ = 1e-05' in text
  assert 'its screening is outside ε' in text  # the gate was on
  m['dp'] = {'epsilon': float('inf'), 'delta': 1e-5}
  assert 'no DP guarantee (ε = ∞)' in verdict.privacy_verdict(m)


def test_warnings_flag_metrics_that_cannot_discriminate():
  # Independent SNPs fail recovery and gdiff is clear of every target: no warning.
  assert verdict.warnings(_metrics(_row(), _row(rec=0.80))) == {}
  # Independent SNPs pass the recovery target: recovery cannot tell.
  w = verdict.warnings(_metrics(_row(), _row(rec=0.96)))
  assert list(w) == ['utility'] and 'independent-SNPs baseline' in w['utility'][0]
  # A standard error larger than the margin to the target.
  w = verdict.warnings(_metrics(_row(mia=0.54, mia_se=0.02, rec=0.955, rec_sd=0.02), _row(rec=0.8)))
  assert any('membership AUC (genotypes) 0.540 ± 0.020' in line for line in w['key'])
  assert any('within one seed sd' in line for line in w['utility'])


def test_every_figure_has_a_caption():
  for name in ('pca', 'ld_decay', 'ld_distance', 'ld_maf', 'mosaic_curve', 'af_scatter', 'dcr'):
    assert glossary.caption(name, 'test'), name
  assert 'real val' in glossary.caption('pca', 'val')


def test_genotype_utility_known_answers():
  dosage, labels = td.ld_cohort(400, 60, seed=0)
  test_x, test_y = td.ld_cohort(200, 60, seed=1)
  features = genotype_utility.fit_features(dosage, labels, max_snps=20)
  assert len(features.top_snps) == 20 and np.all(np.diff(features.top_snps) > 0)
  names = tuple(genotype_utility.GENOTYPE_CLASSIFIERS)
  real = {
    n: genotype_utility.train_and_test(n, features, (dosage, labels), (test_x, test_y), 2)
    for n in names
  }
  assert all(r['acc'] > 0.8 for r in real.values()), real
  # Training on real train itself: recovery exactly 1 (deterministic fits).
  same = genotype_utility.utility(names, features, (dosage, labels), real, (test_x, test_y), 2)
  assert same['recovery_min'] == pytest.approx(1.0)
  # Labels shuffled: nothing to learn, accuracy near chance.
  shuffled = np.random.default_rng(0).permutation(labels)
  noise = genotype_utility.utility(names, features, (dosage, shuffled), real, (test_x, test_y), 2)
  assert noise['recovery_min'] < 0.8, noise


def test_guarantee_fields_come_from_the_cohorts_manifest(tmp_path):
  from gdiff.evaluate import run

  assert run.read_manifest(None) == {} and run.read_manifest(str(tmp_path / 'none.json')) == {}
  path = tmp_path / 'manifest.json'
  gate = {'enabled': True, 'replaced_people': 3, 'distance_rule': 'd < 5', 'kinship_rule': 'off'}
  dp = {'epsilon': 3.0, 'delta': 1e-5, 'steps': 400}
  path.write_text(json.dumps({'num_samples': 100, 'gate': gate, 'dp': dp}))
  fields = run.guarantee_fields(run.read_manifest(str(path)))
  assert fields == {
    'dp': {'epsilon': 3.0, 'delta': 1e-5},
    'gate': {'checked': 100, 'rejected': 3, 'rule': 'd < 5; kinship: off'},
  }
  assert run.guarantee_fields({'gate': {'enabled': False}}) == {}
