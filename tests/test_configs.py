"""The config files: every variant builds, and a misspelt one names the known ones."""

import pytest

from configs import als, base, kg1


@pytest.mark.parametrize('module', [als, kg1])
def test_variants_build_from_the_default(module):
  default = module.get_config()
  assert module.get_config('default').to_dict() == default.to_dict()
  assert default.train.recombine_segment_groups > 0
  faithful = module.get_config('faithful')
  assert faithful.train.recombine_segment_groups == 0 and faithful.sample.eta == 1
  paper = module.get_config('paper')
  assert paper.model.to_dict() == base.get_config().model.to_dict()
  assert paper.train.num_steps > default.train.num_steps
  # Each variant changes only what it says; the cohort stays the module's own.
  for variant in (faithful, paper):
    assert variant.data.to_dict() == default.data.to_dict()


@pytest.mark.parametrize('module', [als, kg1])
def test_unknown_variant_names_the_known_ones(module):
  with pytest.raises(ValueError, match='unknown variant .papr.*default, faithful, paper'):
    module.get_config('papr')
