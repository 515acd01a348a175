"""Shared defaults for every gdiff config.

Each `configs/<cohort>.py` builds on `get_config()` here and overrides only what
differs. Any value can be overridden on the command line, for example
`--config.train.num_steps=200` or `--config.data.vcf=cohort.vcf.gz`.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0

  # ---------------------------------------------------------------- data
  c.data = d = ml_collections.ConfigDict()
  # Real data: give `vcf` (VCF, VCF.gz or BCF) or `plink` (PREFIX of .bed/.bim/.fam),
  # plus `labels` (TSV with a `sample` column and `label_column`).
  d.vcf = ''
  d.plink = ''
  d.labels = ''
  d.label_column = 'label'
  # Optional TSV with columns `sample` and `split` (train/val/test); replaces the
  # seeded stratified split below.
  d.split_file = ''
  d.val_fraction = 0.1
  d.test_fraction = 0.1
  d.split_seed = 0
  # Ingest streams the file in chunks of this many variants and writes one HDF5
  # shard per `shard_variants` kept variants.
  d.chunk_variants = 5000
  d.shard_variants = 50000
  d.qc = ml_collections.ConfigDict()
  d.qc.min_maf = 0.01
  d.qc.min_call_rate = 0.95
  d.qc.min_hwe_p = 1e-5  # 0 disables the HWE filter.
  # A simulated cohort is used when neither `vcf` nor `plink` is given.
  d.simulate = s = ml_collections.ConfigDict()
  s.kind = 'populations'  # 'populations' | 'case_control'
  s.species = 'HomSap'
  s.demography = 'OutOfAfrica_4J17'
  s.populations = ('YRI', 'CEU', 'CHB', 'JPT')
  s.samples_per_population = (150, 150, 150, 150)
  s.num_contigs = 2
  s.contig_length = 2_000_000
  s.recombination_rate = 1e-8
  s.min_maf = 0.05  # sites filtered in tskit before any dense matrix
  s.max_snps_per_contig = 2000  # thins the filtered sites evenly (array-like density)
  s.seed = 1
  # case_control only: liability-threshold phenotype in one population.
  s.population = 'CEU'
  s.num_samples = 600
  s.prevalence = 0.31
  s.heritability = 0.6
  s.num_causal = 50

  # ----------------------------------------------------------- embedding
  c.embedding = e = ml_collections.ConfigDict()
  e.grouping = 'window'  # 'window' (no annotation) | 'genes' (needs `annotation`)
  e.annotation = ''  # BED (chrom, start, end, name) or GTF with gene records
  e.window_snps = 32  # window grouping: consecutive SNPs per group ...
  e.window_span_bp = 0  # ... and at most this span in bp (0: no span limit)
  # Components per group by SNP count: tuples (min_snps, components), first match
  # from the top. The paper: >20 SNPs -> 8, 5-20 -> 4, <=4 -> 1.
  e.rule = 'paper'  # 'paper' | 'full' (min(SNPs, slots)) | 'fixed' (`fixed_components`)
  e.fixed_components = 8
  e.slots = 8  # embedding width per group (C)
  e.group_multiple = 8  # pad the group count to a multiple of this (models need it)
  e.decode = 'calibrated'  # 'calibrated' (per-SNP thresholds fit on train) | 'round'

  # --------------------------------------------------------------- input
  c.input = i = ml_collections.ConfigDict()
  i.batch_size = 32
  i.worker_count = 0  # grain worker processes; 0 reads in the main process
  i.shuffle_seed = 0

  # --------------------------------------------------------------- model
  c.model = m = ml_collections.ConfigDict()
  m.name = 'mlp_cnn'  # 'mlp' | 'cnn' | 'mlp_cnn' | 'transformer'
  m.mlp_widths = (1024, 512, 256)
  m.norm_groups = 32
  m.cnn_base_width = 64
  m.cnn_channel_mults = (1, 1, 1, 1, 2, 2, 3, 4)
  m.cnn_num_res_blocks = 3
  m.cnn_attention_factors = (32, 64)  # downsampling factors that get attention
  m.num_heads = 4
  m.gate_hidden = 64  # time MLP of the mlp_cnn blend
  m.transformer_genes_per_token = 16
  m.transformer_layers = 12
  m.transformer_dim = 384
  m.transformer_heads = 6
  m.dropout = 0.0
  m.dtype = 'float32'  # compute dtype: 'float32' | 'bfloat16'

  # ----------------------------------------------------------- diffusion
  c.diffusion = df = ml_collections.ConfigDict()
  df.schedule = 'cosine'  # 'cosine' | 'linear'
  df.num_steps = 500  # T
  df.label_dropout = 0.1  # probability of the null label: trains classifier-free guidance

  # --------------------------------------------------------------- train
  c.train = t = ml_collections.ConfigDict()
  t.num_steps = 2000
  t.learning_rate = 2e-4
  t.warmup_steps = 100
  t.weight_decay = 0.0
  t.grad_clip = 1.0
  t.ema_decay = 0.999
  t.log_every = 50
  t.eval_every = 250
  t.checkpoint_every = 250
  t.keep_checkpoints = 3

  # -------------------------------------------------------------- sample
  c.sample = sm = ml_collections.ConfigDict()
  sm.num = 0  # 0: as many as the real train split, in its label proportions
  sm.class_counts = ''  # e.g. 'case:100,control:200'; overrides `num`
  sm.method = 'ddim'  # 'ddpm' | 'ddim'
  sm.steps = 50  # DDIM steps (DDPM always uses all T)
  sm.eta = 0.0  # DDIM eta (0: deterministic)
  sm.guidance = 0.0  # classifier-free guidance weight w (0: plain conditional)
  sm.checkpoint = 'best'  # 'best' (val loss) | 'latest' | a step number
  sm.use_ema = True
  sm.batch_size = 256
  sm.seed = 0

  # ------------------------------------------------------------ evaluate
  c.evaluate = ev = ml_collections.ConfigDict()
  ev.classifiers = ('logreg', 'mlp', 'cnn', 'transformer')
  ev.seeds = 3
  ev.classifier_steps = 300
  ev.augmentation_fractions = (0.05, 0.1, 0.2, 0.5)
  ev.ld_max_distance_snps = 50
  ev.baselines = ('independent', 'gaussian', 'mosaic', 'resample')
  ev.block_size = 1024  # rows per block in distance computations
  return c
