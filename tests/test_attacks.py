"""Membership attacks with a reference population, exposure by ID (gdiff.evaluate.attacks).

Known answers on a simulated population: a synthetic cohort of copies of the training
people is caught by every attack; one of other real people of the same population
(never trained on) leaves every AUC at chance; the few planted copies head
exposed_people.tsv by their IDs.
"""

import os
import types

import numpy as np
import pytest

from configs import base
from gdiff.data import cohort as cohort_lib
from gdiff.data import simulate
from gdiff.evaluate import attacks

N_TRAIN, N_HOLDOUT, N_OTHER = 80, 60, 80


@pytest.fixture(scope='module')
def population():
  sim = base.get_config().data.simulate
  sim.populations = ('CEU',)
  sim.samples_per_population = (N_TRAIN + N_HOLDOUT + N_OTHER,)
  sim.num_contigs = 22
  sim.contig_length = 1_000_000
  sim.max_snps_per_contig = 40
  sim.seed = 3
  cohort = simulate.simulate(sim)
  haps = np.concatenate([c.haplotypes_Sx2N for c in cohort.contigs]).T
  dosage = (haps[0::2] + haps[1::2]).astype(np.int8)
  chrom = np.concatenate([np.full(len(c.pos), c.name) for c in cohort.contigs])
  return dict(
    train=dosage[:N_TRAIN],
    holdout=dosage[N_TRAIN : N_TRAIN + N_HOLDOUT],
    other=dosage[N_TRAIN + N_HOLDOUT :],
    chrom=chrom,
    variants=cohort_lib.Variants.concatenate([simulate.contig_variants(c) for c in cohort.contigs]),
  )


def _ctx(population, synthetic):
  return types.SimpleNamespace(
    holdout=types.SimpleNamespace(name='test'),
    dosage={'train': population['train'], 'test': population['holdout']},
    synthetic=types.SimpleNamespace(dosage_NxS=synthetic),
    block_size=64,
    seed=0,
    chrom_S=population['chrom'],
  )


@pytest.fixture(scope='module')
def workdir(population, tmp_path_factory):
  """W/data with the people's IDs (train first), as the exposure table reads them."""
  w = str(tmp_path_factory.mktemp('w'))
  data = os.path.join(w, 'data')
  os.makedirs(os.path.join(data, cohort_lib.SHARD_DIR))
  n = N_TRAIN + N_HOLDOUT
  split = ['train'] * N_TRAIN + ['test'] * N_HOLDOUT
  cohort_lib.write_samples(data, [f'person{i}' for i in range(n)], ['CEU'] * n, split)
  dosage = np.concatenate([population['train'], population['holdout']])
  cohort_lib.write_shard(cohort_lib.shard_path(data, 0), population['variants'], dosage)
  return w


def test_copies_of_the_training_people_are_caught_by_every_attack(population, workdir):
  out, _ = attacks.evaluate(_ctx(population, population['train'].copy()), workdir)
  for name in attacks.ATTACKS:
    assert out[name]['auc'] > 0.9, (name, out[name])
  assert out['distance']['tpr_at_fpr_0.01'] is None  # 60 non-members: too few for 1 %
  assert out['num_members'] == N_HOLDOUT and out['num_non_members'] == N_HOLDOUT
  synthetic = out['kinship']['synthetic']
  assert synthetic['with_duplicate'] == N_TRAIN and out['kinship']['holdout']['with_duplicate'] == 0


def test_other_people_of_the_population_leave_every_attack_at_chance(population, workdir):
  out, _ = attacks.evaluate(_ctx(population, population['other']), workdir)
  for name in attacks.ATTACKS:
    assert abs(out[name]['auc'] - 0.5) < 3 * out[name]['auc_se'], (name, out[name])


def test_planted_copies_head_the_exposure_table_by_id(population, workdir, tmp_path):
  planted = [5, 17, 42]
  synthetic = np.concatenate([population['other'][:40], population['train'][planted]])
  _, rows = attacks.evaluate(_ctx(population, synthetic), workdir)
  path = attacks.write_exposed(str(tmp_path), rows, limit=10)
  with open(path) as f:
    header, *lines = [line.rstrip('\n').split('\t') for line in f]
  assert len(lines) == 10 and header[:3] == ['rank', 'sample', 'label']
  assert {line[1] for line in lines[:3]} == {f'person{i}' for i in planted}
  assert all(row['sample'].startswith('person') for row in rows)
  assert len(rows) == N_TRAIN  # every training person scored, none of the held-out


def test_tpr_at_fpr_and_p_values_known_answers():
  neg = np.arange(100.0)
  pos = np.array([98.0, 99.0, 99.5, 150.0])
  assert attacks.tpr_at_fpr(pos, neg, 0.01) == 0.5  # threshold 99: 99.5 and 150 pass
  assert attacks.tpr_at_fpr(pos, neg, 0.001) is None
  np.testing.assert_allclose(
    attacks.p_values(np.array([-1.0, 99.0, 200.0]), neg), [1, 2 / 101, 1 / 101]
  )


def test_the_report_section_shows_every_attack_and_links_the_exposed_people(population, workdir):
  out, _ = attacks.evaluate(_ctx(population, population['other']), workdir)
  section = attacks.report_section({'attacks': out})
  assert f'href="{attacks.EXPOSED_FILE}"' in section
  for name in attacks.ATTACKS:
    assert f'<td>{name}</td><td>{out[name]["auc"]:.3f} ± ' in section
  assert 'release gate: off' in section  # no samples/manifest.json in this workdir
  assert attacks.report_section({}) == ''
