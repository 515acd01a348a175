"""Sequence-density cohort of closely related populations, a few hundred people.

Default: a stdpopsim AshkSub_7G19 simulation (Gladstein & Hammer 2019: Ashkenazi
Jewish substructure) of CEU, ME (Middle East), WAJ and EAJ (Western and Eastern
Ashkenazi), 150 each (600 people), on 2 contigs of 1 Mb keeping every biallelic
site with minor allele frequency >= 1 % (no thinning to array density: thousands of
SNPs per Mb, LD over many SNPs). WAJ vs EAJ is the hard label. Small cohorts are
what users often bring, and where a generator memorises first.
`configs/dense.py:diffusion` uses the diffusion generator (the `cpu_small` networks).

Why each value: docs/decisions.md; measured results: docs/results.md.
"""

from configs import base


def get_config(arg: str | None = None):
  c = base.get_config()
  s = c.data.simulate
  s.kind = 'populations'
  s.demography = 'AshkSub_7G19'
  s.populations = ('CEU', 'ME', 'WAJ', 'EAJ')
  s.samples_per_population = (150, 150, 150, 150)  # why: docs/decisions.md#dense-cohort
  s.num_contigs = 2
  s.contig_length = 1_000_000
  s.min_maf = 0.01  # every common and low-frequency site, as sequencing gives
  s.max_snps_per_contig = 0  # no thinning
  s.seed = 3
  return base.with_variant(c, arg, VARIANTS, 'configs/dense.py')


def diffusion(c):
  """The diffusion generator (`cpu_small` networks, recombination augmentation)."""
  base.cpu_small(c)
  c.generator = 'diffusion'
  c.train.num_steps = 4500
  c.train.recombine_segment_groups = 32.0  # why: docs/decisions.md#recombination-augmentation
  return c


# `--config=configs/dense.py:NAME` -> the function that turns the default into that variant.
VARIANTS = {
  'default': lambda c: c,
  'diffusion': diffusion,
  'paper': lambda c: base.paper(c, num_steps=5_000),
  'quick': base.quick,  # a 3-minute first look
}
