"""1000-Genomes-like multi-population cohort (the paper's 1KG setting).

Default: a stdpopsim OutOfAfrica_4J17 simulation of YRI, CEU, CHB and JPT.
CHB vs JPT is the hard label (closely related East Asian populations); YRI vs
CEU vs East Asia is the easy one. `configs/kg1.py:private` is the private end of
the frontier (as `configs/als.py:private`); `configs/kg1.py:paper` gives the
paper's network sizes for a GPU/TPU.
"""

from configs import als, base


def get_config(arg: str | None = None):
  c = als.get_config()  # the small CPU network sizes
  s = c.data.simulate
  s.kind = 'populations'
  s.demography = 'OutOfAfrica_4J17'
  s.populations = ('YRI', 'CEU', 'CHB', 'JPT')
  s.samples_per_population = (200, 200, 200, 200)
  # The training measured on this cohort (README "Quality"); configs/als.py trains
  # longer and faster, which pays only on its larger cohort.
  c.train.num_steps = 1500
  c.train.learning_rate = 2e-4

  return base.with_variant(c, arg, VARIANTS, 'configs/kg1.py')


def paper(c):
  """The paper's sizes (`configs/als.py` `paper`), ~100 epochs of 2,253 people at batch 32."""
  als.paper(c)
  c.train.num_steps = 7_000
  return c


# The variants of configs/als.py (`private`: recombination augmentation), with kg1's `paper`.
VARIANTS = {**als.VARIANTS, 'paper': paper}
