"""ALS-like case/control cohort (the paper's Project MinE setting).

Default: a simulated European cohort of 4,800 people with a liability-threshold
phenotype (prevalence 0.31 as in Project MinE); `--mode=all` takes about 35-40 min on
a 2-core CPU, most of it training. `configs/als.py:faithful` moves toward the faithful
(and leakier) end of the privacy-fidelity frontier (README "Quality"). `configs/als.py:paper`
gives the paper's network sizes and training schedule, for a GPU/TPU and a real cohort:

  python -m gdiff.main --config=configs/als.py:paper --workdir=W \
      --config.data.vcf=minE.vcf.gz --config.data.labels=pheno.tsv \
      --config.data.label_column=status --config.embedding.grouping=genes \
      --config.embedding.annotation=genes.bed
"""

from configs import base


def get_config(arg: str | None = None):
  c = base.get_config()
  s = c.data.simulate
  s.kind = 'case_control'
  s.demography = 'OutOfAfrica_4J17'
  s.population = 'CEU'
  # 4,800 people (3,840 train), about half of Project MinE's 10,405. The cohort size
  # moves gdiff's privacy-fidelity line (README "Quality", finding 6): with the training
  # below, membership AUC (embedding, val) was 0.72 at 2,400 people and 0.58 at 4,800
  # (LD r2 corr 0.91 / 0.89, PCA AUC 0.55 / 0.53); at 800 people even the shorter
  # training of 1,500 steps at lr 2e-4 gave 0.76. Simulating and evaluating more people
  # costs little; training costs steps.
  s.num_samples = 4800
  s.prevalence = 0.31
  # Oligogenic liability (ALS has a few major genes: C9orf72, SOD1, TARDBP, FUS): 3 causal
  # SNPs, heritability 0.9. With 50 causal SNPs and heritability 0.6, 640 training people
  # could not learn the label (real-trained accuracy 0.67-0.70 vs majority 0.69), so
  # recovery meant nothing; 3 / 0.9 gives real-trained accuracy 0.83-0.84 (logreg, mlp;
  # majority 0.69; measured on this cohort's 80 test people, README "Quality").
  s.heritability = 0.9
  s.num_causal = 3

  c.model.name = 'mlp_cnn'
  c.model.mlp_widths = (256, 128, 64)
  c.model.norm_groups = 8
  c.model.cnn_base_width = 32
  c.model.cnn_channel_mults = (1, 2, 2)
  c.model.cnn_num_res_blocks = 1
  c.model.cnn_attention_factors = (4,)
  c.model.transformer_layers = 2
  c.model.transformer_dim = 64
  c.model.transformer_heads = 4
  # 4,500 steps at lr 1e-3 (37 epochs at batch 32): at 4,800 people the val loss still
  # falls at the end (0.4134 -> 0.4130 over the last 500 steps) and the synthetic people
  # are no closer to training people than the mosaic baseline's (membership AUC 0.58
  # vs 0.59); at 1,500 steps and lr 2e-4 the model underfits (2,400 people: LD r2
  # corr 0.77, PCA AUC 0.91).
  # Recombined (below), twice as long again, 9,000 steps (75 epochs; bench/quality.py
  # point recomb32_vlong against recomb32_long), gave on val: LD r2 corr 0.929 vs 0.895,
  # PCA AUC 0.537 vs 0.568, privacy loss 0.003 vs 0.047, membership AUC 0.550 / 0.516 vs
  # 0.539 / 0.515, for recovery 0.931 vs 0.959 and AA_syn 0.38 vs 0.57.
  c.train.num_steps = 9000
  c.train.learning_rate = 1e-3
  # Recombination augmentation (segments of 32 groups) with deterministic DDIM (eta 0).
  # On val at 4,800 people (bench/quality.py, README "Quality") it beat the same training
  # without recombination and with eta 1 (`faithful` below) on recovery (0.959 vs 0.934),
  # AA_syn (0.569 vs 0.410), privacy loss (0.047 vs 0.068) and membership AUC (0.539 /
  # 0.515 vs 0.581 / 0.526), at equal LD r2 corr (0.895 vs 0.894), for PCA AUC 0.568 vs
  # 0.527. Recombined with eta 1 it was worse on all of these but privacy loss (0.035) and
  # membership AUC (0.537 / 0.514, equal): LD 0.879, PCA AUC 0.577, AA_syn 0.348. Segments
  # of 64 groups: PCA AUC 0.545, LD 0.899, but recovery 0.906, privacy loss 0.052 and
  # membership AUC 0.568 / 0.555. At 800 people recombination cost much realism (LD r2
  # corr 0.78, PCA AUC 0.83 on val).
  c.train.recombine_segment_groups = 32.0
  c.sample.eta = 0.0

  return base.with_variant(c, arg, VARIANTS, 'configs/als.py')


def faithful(c):
  """No recombination, stochastic DDIM (eta 1): closer to training people, and leakier.

  The ALS default before the val comparison at 4,800 people: PCA AUC 0.527 but membership
  AUC 0.581 / 0.526 and privacy loss 0.068 (val; README "Quality"). On the 1KG-like cohort
  of 4 x 600 people: LD r2 corr 0.934 and PCA AUC 0.532, membership AUC 0.642 / 0.527.
  """
  c.train.num_steps = 4500  # what was measured; without recombination, longer fits leak more
  c.train.recombine_segment_groups = 0.0
  c.sample.eta = 1.0
  return c


def paper(c):
  """The paper's sizes: networks, T=500, lr 2e-4, batch 32, ~100 epochs.

  gdiff's own additions stay on (EMA, gradient clipping, label dropout for
  guidance, recombination augmentation); set train.ema_decay=0, train.grad_clip=0 and
  train.recombine_segment_groups=0 for the paper's exact optimiser and data.
  """
  defaults = base.get_config()
  c.model = defaults.model  # base holds the paper's network sizes
  c.diffusion.num_steps = 500
  c.diffusion.label_dropout = 0.1
  c.input.batch_size = 32
  c.train.learning_rate = 2e-4
  c.train.warmup_steps = 100
  c.train.num_steps = 30_000  # ~100 epochs of 9,365 people at batch 32
  c.train.eval_every = 1000
  c.train.checkpoint_every = 1000
  c.embedding.group_multiple = 1024
  c.sample.method = 'ddpm'
  return c


# `--config=configs/als.py:NAME` -> the function that turns the default into that variant.
VARIANTS = {'default': lambda c: c, 'faithful': faithful, 'paper': paper}
