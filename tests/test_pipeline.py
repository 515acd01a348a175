"""The stage runner: options of every stage are checked before any stage starts."""

import pytest

from configs import als
from gdiff import pipeline
from gdiff.errors import InputError


@pytest.mark.parametrize(
  'key,value,match',
  [
    ('model.name', 'unet', 'model.name'),
    ('diffusion.prediction', 'x0', 'diffusion.prediction'),
    ('train.recombine_segment_groups', 0.5, 'train.recombine_segment_groups'),
    ('train.recombine_prob', 1.5, 'train.recombine_prob'),
    ('sample.decode_thresholds', 'exact', 'sample.decode_thresholds'),
    ('evaluate.holdout', 'train', 'evaluate.holdout'),
    ('sample.method', 'euler', 'sample.method'),
    ('evaluate.classifiers', ('mlp', 'svm'), 'evaluate.classifiers'),
    ('evaluate.seeds', 0, 'evaluate.seeds'),
  ],
)
def test_bad_options_fail_before_any_stage_runs(tmp_path, key, value, match):
  config = als.get_config()
  section, leaf = key.split('.')
  config[section][leaf] = value
  workdir = tmp_path / 'w'
  with pytest.raises(InputError, match=match):
    pipeline.run(config, str(workdir), 'all')
  assert not workdir.exists()  # nothing was started


@pytest.mark.parametrize(
  'key,value,match',
  [
    ('generator', 'gan', 'generator'),
    ('ar.unit', 'phased', 'ar.unit'),
    ('ar.context_snps', (16, 0), 'ar.context_snps'),
    ('ar.l2_class', 0.0, 'ar.l2_class'),
    ('sample.temperature', 0.0, 'sample.temperature'),
  ],
)
def test_bad_ar_options_fail_before_any_stage_runs(tmp_path, key, value, match):
  config = als.get_config()
  assert config.generator == 'ar'
  section, leaf = key.split('.') if '.' in key else (None, key)
  if section:
    config[section][leaf] = value
  else:
    config[leaf] = value
  workdir = tmp_path / 'w'
  with pytest.raises(InputError, match=match):
    pipeline.run(config, str(workdir), 'all')
  assert not workdir.exists()


def test_options_of_stages_not_run_are_not_checked(tmp_path):
  config = als.get_config()
  config.evaluate.seeds = 0
  with pytest.raises(InputError, match='has not finished'):
    pipeline.run(config, str(tmp_path), 'sample')  # fails on the missing stages instead
