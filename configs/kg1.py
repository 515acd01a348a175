"""1000-Genomes-like multi-population cohort (the paper's 1KG setting).

Default: a stdpopsim OutOfAfrica_4J17 simulation of YRI, CEU, CHB and JPT, 600
each (2,400 people; the 1000 Genomes phase 3 release has 2,504), and the `cpu_small`
networks. CHB vs JPT is the hard label (closely related East Asian populations); YRI vs
CEU vs East Asia is the easy one. `configs/kg1.py:faithful` is the faithful, leakier end
of the frontier; `configs/kg1.py:paper` gives the paper's network sizes for a GPU/TPU.

Why each value: docs/decisions.md; measured results: docs/results.md.
"""

from configs import base


def get_config(arg: str | None = None):
  c = base.cpu_small(base.get_config())
  s = c.data.simulate
  s.kind = 'populations'
  s.demography = 'OutOfAfrica_4J17'
  s.populations = ('YRI', 'CEU', 'CHB', 'JPT')
  s.samples_per_population = (600, 600, 600, 600)  # why: docs/decisions.md#kg1-cohort-size

  c.train.num_steps = 4500  # why: docs/decisions.md#kg1-training-length
  c.train.recombine_segment_groups = 32.0  # why: docs/decisions.md#recombination-augmentation
  c.sample.eta = 1.0  # why: docs/decisions.md#kg1-sampler-eta
  return base.with_variant(c, arg, VARIANTS, 'configs/kg1.py')


def faithful(c):
  """No recombination, stochastic DDIM (eta 1): closer to training people, and leakier."""
  c.train.num_steps = 4500  # why: docs/decisions.md#faithful-variant
  c.train.recombine_segment_groups = 0.0
  c.sample.eta = 1.0
  return c


def paper(c):
  """The paper's sizes (`base.paper`), ~100 epochs of 2,253 people at batch 32."""
  return base.paper(c, num_steps=7_000)


# `--config=configs/kg1.py:NAME` -> the function that turns the default into that variant.
VARIANTS = {'default': lambda c: c, 'faithful': faithful, 'paper': paper}
