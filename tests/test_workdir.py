"""Stage records: reuse when unchanged, refuse incompatible workdirs, delete nothing."""

import json
import os

import pytest

from configs import als, kg1
from gdiff import workdir as wd
from gdiff.errors import InputError


def test_fresh_stage_is_not_done(tmp_path):
  assert not wd.check(als.get_config(), str(tmp_path), 'prepare')


def test_done_stage_is_reused(tmp_path):
  config = als.get_config()
  wd.mark_done(config, str(tmp_path), 'prepare')
  assert wd.check(config, str(tmp_path), 'prepare')


def test_changed_upstream_config_is_refused_and_nothing_deleted(tmp_path):
  config = als.get_config()
  wd.mark_done(config, str(tmp_path), 'prepare')
  keep = tmp_path / 'data' / 'keep.txt'
  keep.parent.mkdir()
  keep.write_text('x')
  changed = als.get_config()
  changed.embedding.window_snps = 16
  with pytest.raises(InputError, match=r'embedding\.window_snps \(32 -> 16\)'):
    wd.check(changed, str(tmp_path), 'train')
  with pytest.raises(InputError, match='new --workdir'):
    wd.check(changed, str(tmp_path), 'prepare')
  assert keep.read_text() == 'x'


def test_simulation_keys_the_cohort_does_not_use_are_not_compared(tmp_path):
  config = kg1.get_config()  # simulates populations: the case/control keys are unused
  wd.mark_done(config, str(tmp_path), 'prepare')
  other = kg1.get_config()
  other.data.simulate.num_samples += 1
  other.data.simulate.prevalence = 0.5
  assert wd.check(other, str(tmp_path), 'prepare')
  other.data.simulate.samples_per_population = (10, 10, 10, 10)
  with pytest.raises(InputError, match=r'samples_per_population'):
    wd.check(other, str(tmp_path), 'prepare')


def test_simulation_keys_are_not_compared_for_a_real_cohort(tmp_path):
  config = als.get_config()
  config.data.vcf = 'cohort.vcf.gz'
  wd.mark_done(config, str(tmp_path), 'prepare')
  config.data.simulate.seed += 1
  assert wd.check(config, str(tmp_path), 'prepare')
  config.data.vcf = 'other.vcf.gz'
  with pytest.raises(InputError, match=r'data\.vcf'):
    wd.check(config, str(tmp_path), 'prepare')


def test_missing_upstream_stage_names_the_mode(tmp_path):
  with pytest.raises(InputError, match='--mode=prepare'):
    wd.check(als.get_config(), str(tmp_path), 'train')


def test_longer_training_resumes_instead_of_refusing(tmp_path):
  config = als.get_config()
  for stage in ('prepare', 'train'):
    wd.mark_done(config, str(tmp_path), stage)
  longer = als.get_config()
  longer.train.num_steps *= 2
  wd.check(longer, str(tmp_path), 'train')  # no error
  assert os.path.exists(tmp_path / 'stages' / 'train.json')


def test_resampling_with_new_settings_is_allowed(tmp_path):
  config = als.get_config()
  for stage in ('prepare', 'train', 'sample'):
    wd.mark_done(config, str(tmp_path), stage)
  other = als.get_config()
  other.sample.guidance = 1.0
  assert not wd.check(other, str(tmp_path), 'sample')  # redo, no error


def test_changed_training_settings_are_refused_but_logging_cadence_is_not(tmp_path):
  config = als.get_config()
  for stage in ('prepare', 'train'):
    wd.mark_done(config, str(tmp_path), stage)
  cadence = als.get_config()
  cadence.train.log_every, cadence.train.checkpoint_every = 7, 11
  assert wd.check(cadence, str(tmp_path), 'train')
  changed = als.get_config()
  changed.train.learning_rate *= 2
  with pytest.raises(InputError, match=r'train\.learning_rate'):
    wd.check(changed, str(tmp_path), 'train')


def _drop_added_keys(tmp_path, stage):
  """Rewrites a stage record as a gdiff from before the keys of `wd.ADDED` would have."""
  path = tmp_path / 'stages' / f'{stage}.json'
  record = json.loads(path.read_text())
  for key in wd.ADDED:
    section, leaf = key.split('.')
    record['sections'].get(section, {}).pop(leaf, None)
  path.write_text(json.dumps(record))


def test_records_from_before_a_key_existed_read_as_the_old_behaviour(tmp_path):
  old = als.get_config('faithful')  # no recombination, as before the key existed
  old.sample.decode_thresholds = 'train'  # what sampling did before the key existed
  for stage in ('prepare', 'train', 'sample', 'evaluate'):
    wd.mark_done(old, str(tmp_path), stage)
    _drop_added_keys(tmp_path, stage)
  config = als.get_config('faithful')
  assert wd.check(config, str(tmp_path), 'train')  # the trained model is reused
  assert not wd.check(config, str(tmp_path), 'sample')  # new default thresholds: re-sample
  assert wd.check(old, str(tmp_path), 'sample')
  config.diffusion.prediction = 'v'  # not what the old run trained
  with pytest.raises(InputError, match=r"diffusion\.prediction \('eps' -> 'v'\)"):
    wd.check(config, str(tmp_path), 'train')
