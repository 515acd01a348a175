"""ALS-like case/control cohort (the paper's Project MinE setting).

Default: a simulated European cohort of 4,800 people with a liability-threshold
phenotype (prevalence 0.31 as in Project MinE) and the `cpu_small` networks; `--mode=all`
takes about 35-40 min on a 2-core CPU, most of it training. Variants:
`configs/als.py:faithful` moves toward the faithful (and leakier) end of the
privacy-fidelity frontier; `configs/als.py:paper` gives the paper's network sizes and
training schedule, for a GPU/TPU and a real cohort:

  python -m gdiff.main --config=configs/als.py:paper --workdir=W \
      --config.data.vcf=minE.vcf.gz --config.data.labels=pheno.tsv \
      --config.data.label_column=status --config.embedding.grouping=genes \
      --config.embedding.annotation=genes.bed

Why each value: docs/decisions.md; measured results: docs/results.md.
"""

from configs import base


def get_config(arg: str | None = None):
  c = base.cpu_small(base.get_config())
  s = c.data.simulate
  s.kind = 'case_control'
  s.demography = 'OutOfAfrica_4J17'
  s.population = 'CEU'
  s.num_samples = 4800  # why: docs/decisions.md#als-cohort-size
  s.prevalence = 0.31  # Project MinE's case fraction
  s.heritability = 0.9  # why: docs/decisions.md#als-phenotype
  s.num_causal = 3  # why: docs/decisions.md#als-phenotype

  c.train.num_steps = 9000  # why: docs/decisions.md#als-training-length
  c.train.recombine_segment_groups = 32.0  # why: docs/decisions.md#recombination-augmentation
  c.sample.eta = 0.0  # why: docs/decisions.md#als-sampler-eta
  return base.with_variant(c, arg, VARIANTS, 'configs/als.py')


def faithful(c):
  """No recombination, stochastic DDIM (eta 1): closer to training people, and leakier."""
  c.train.num_steps = 4500  # why: docs/decisions.md#faithful-variant
  c.train.recombine_segment_groups = 0.0
  c.sample.eta = 1.0
  return c


def paper(c):
  """The paper's sizes (`base.paper`), ~100 epochs of 9,365 people at batch 32."""
  return base.paper(c, num_steps=30_000)


# `--config=configs/als.py:NAME` -> the function that turns the default into that variant.
VARIANTS = {'default': lambda c: c, 'faithful': faithful, 'paper': paper}
