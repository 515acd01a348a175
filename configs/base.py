"""Shared defaults for every gdiff config, and the two size presets.

Each `configs/<cohort>.py` builds on `get_config()` here, applies one preset
(`cpu_small`: networks that train on a laptop CPU; `paper`: the paper's sizes and
schedule) and overrides only what its cohort needs. `get_config()` itself holds the
paper's network sizes, but for a lighter CNN U-Net: one ResBlock per level instead of
three, and parameter-free down/up-sampling (`paper_networks` restores the paper's).
Any value can be overridden on the command line, for example
`--config.train.num_steps=200` or `--config.data.vcf=cohort.vcf.gz`. Why a default is
what it is: docs/decisions.md.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0

  # ---------------------------------------------------------------- data
  c.data = d = ml_collections.ConfigDict()
  # Real data: give `vcf` (VCF, VCF.gz or BCF), `plink` (PREFIX of .bed/.bim/.fam) or
  # `pgen` (PREFIX of plink2's .pgen/.pvar/.psam), plus `labels` (TSV with a `sample`
  # column and `label_column`). Each takes one path, a glob ('chr*.vcf.gz') or several
  # (a list here, comma-separated on the command line), read as one cohort: the same
  # samples in every file. BGEN: convert it to PGEN with plink2. See docs/decisions.md#inputs.
  d.vcf = ml_collections.FieldReference('', field_type=object)  # str or list of str
  d.plink = ml_collections.FieldReference('', field_type=object)
  d.pgen = ml_collections.FieldReference('', field_type=object)
  d.labels = ''
  d.label_column = 'label'
  # Optional TSV with columns `sample` and `split` (train/val/test); replaces the
  # seeded stratified split below.
  d.split_file = ''
  d.val_fraction = 0.1
  d.test_fraction = 0.1
  d.split_seed = 0
  # Ingest streams the file in chunks of this many variants and writes one HDF5
  # shard per `shard_variants` kept variants; peak memory is about
  # N x (8 x chunk_variants + 2 x shard_variants) bytes for N samples.
  d.chunk_variants = 5000
  d.shard_variants = 20000
  # Ingest in this many worker processes, each streaming its own genomic region
  # (0: serial in this process; -1: one per usable core). Peak memory is then about
  # workers x the serial peak. Regions: the file is cut into about
  # `ingest_regions_per_worker` x workers pieces of equal record counts, only between
  # records at different positions, read through a .tbi/.csi index (made in a scratch
  # folder when missing). PLINK is cut by variant index. A plain .vcf, or a VCF without
  # bcftools/tabix on PATH, is ingested serially (logged). Results equal the serial ones.
  d.ingest_workers = 0
  d.ingest_regions_per_worker = 3
  d.qc = ml_collections.ConfigDict()
  d.qc.min_maf = 0.01
  d.qc.min_call_rate = 0.95
  d.qc.min_hwe_p = 1e-5  # 0 disables the HWE filter (exact test, as plink --hardy).
  # HWE is tested within each class and a SNP is dropped if it fails in any
  # ('class'), or in all samples pooled ('all'; pooled populations fail HWE at
  # their ancestry-informative SNPs).
  d.qc.hwe_within = 'class'
  # A bad genotype call ('0/3' at a single-ALT site, '0/1/1', text): 'error' | 'missing' (counted).
  d.qc.bad_calls = 'error'
  # X, Y and MT: 'drop' (counted and logged; gdiff models diploid autosomes) | 'diploid'
  # (kept, males' haploid calls read as homozygous, no HWE test). docs/decisions.md#sex-chromosomes
  d.sex_chromosomes = 'drop'
  # A simulated cohort is used when none of `vcf`, `plink`, `pgen` is given.
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
  # genes: a SNP in several genes goes to the gene with the nearest midpoint; a SNP
  # outside genes to the nearest gene; chromosomes without genes are windowed.
  e.window_snps = 32  # window grouping: consecutive SNPs per group ...
  e.window_span_bp = 0  # ... spanning less than this many bp (0: no span limit)
  # Components per group (gdiff.embedding.pca.RULES), never more than the group's
  # SNPs or `slots`. 'paper': >20 SNPs -> 8, 5-20 -> 4, <=4 -> 1.
  e.rule = 'paper'  # 'paper' | 'full' (min(SNPs, slots)) | 'fixed' (`fixed_components`)
  e.fixed_components = 8
  e.slots = 8  # embedding width per group (C)
  e.group_multiple = 8  # pad the group count to a multiple of this (models need it)
  # 'calibrated': per-SNP thresholds fit on train so decoded genotype frequencies
  # match train (quantile matching) | 'round': round and clip to {0, 1, 2}.
  e.decode = 'calibrated'

  # --------------------------------------------------------------- input
  c.input = i = ml_collections.ConfigDict()
  # Read with gdiff.data.dataset.make_loader (TFDS array_record + grain).
  i.batch_size = 32  # global batch (make_loader's batch_size is per shard/process)
  i.worker_count = 0  # grain worker processes; 0 reads in the main process
  i.shuffle_seed = 0  # grain shuffle seed (a new permutation every epoch)
  # Shards the train split is read in (0: one per process). The global batch is
  # a function of this alone, so N processes give the same result as one
  # process reading N shards; set it to the process count of a multi-host run
  # to reproduce that run on one host.
  i.data_shards = 0

  # ----------------------------------------------------------- generator
  # 'ar': the local autoregressive model (gdiff.ar); 'diffusion': the paper's DDPM over the
  # PCA embedding (the sections input, model, diffusion, train). gdiff.generators.
  c.generator = 'ar'  # why: docs/decisions.md#generator

  # ------------------------------------------------------------------ ar
  c.ar = a = ml_collections.ConfigDict()
  # 'auto': the two haplotypes of each person when the cohort is phased, else genotypes.
  a.unit = 'auto'  # 'auto' | 'haplotype' | 'genotype'
  # SNPs before each SNP that it is conditioned on; with several, val log-likelihood picks one.
  a.context_snps = (16, 32)  # why: docs/decisions.md#ar-context
  a.per_class = True  # class-specific LD tables (populations differ in LD, not only in AF)
  # Top genome-wide PCs each SNP also conditions on (0: none): ancestry that holds past k SNPs.
  a.ancestry_pcs = 0  # why: docs/decisions.md#ar-ancestry-code
  # Cut the genome into segments fit as independent jobs (gdiff.ar.segments; launch/segments_*):
  # 'genome' (one fit) | 'chromosome' | a SNP count as a string, e.g. '20000'.
  a.segments = 'genome'
  # L2 penalties of the shared and the class-specific tables, against the summed log-likelihood.
  a.l2_shared = 0.01  # why: docs/decisions.md#ar-penalties-temperature-and-iterations
  a.l2_class = 0.1  # why: docs/decisions.md#ar-penalties-temperature-and-iterations
  a.block_snps = 256  # SNPs fit together (memory ~ sequences x block_snps x context)
  # 'lbfgs' (100 iterations: stops short of the penalised optimum, which regularises) |
  # 'newton' (per-SNP Newton steps to the optimum: a little faster, leakier on kg1; set
  # max_iter=30 and tol=1e-4 with it).
  a.solver = 'lbfgs'  # why: docs/decisions.md#ar-solver
  a.max_iter = 100  # why: docs/decisions.md#ar-penalties-temperature-and-iterations
  # lbfgs: until the gradient norm of the block's mean objective is below this (newton: every
  # SNP's Newton decrement per sequence).
  a.tol = 1e-5
  # Differential privacy for the training people (gdiff.ar.dp): DP-Adam with Poisson-sampled
  # people, each person's whole gradient clipped, Gaussian noise; epsilon from dp_accounting.
  a.dp = d = ml_collections.ConfigDict()
  d.enabled = False  # why: docs/decisions.md#differential-privacy
  d.target_epsilon = 3.0  # calibrate the noise multiplier to this epsilon (at delta) ...
  d.noise_multiplier = 0.0  # ... or use this one (> 0) and report its epsilon
  d.delta = 0.0  # 0: 1 / (10 * train people)
  d.clip_norm = 1.0  # L2 bound of one person's gradient (Adam makes its scale moot)
  d.batch_people = 256  # expected people per step (Poisson rate = batch_people / train people)
  d.steps = 400
  d.learning_rate = 0.05  # Adam's peak (cosine decay to 0 over the steps)
  # Fixed under DP (no choice on val).
  d.context_snps = 16  # why: docs/decisions.md#differential-privacy
  d.microbatch = 32  # people per jitted call (memory ~ microbatch x parameters)
  d.accountant = 'pld'  # 'pld' | 'rdp' (dp_accounting)

  # --------------------------------------------------------------- model
  c.model = m = ml_collections.ConfigDict()
  m.name = 'mlp_cnn'  # 'mlp' | 'cnn' | 'mlp_cnn' | 'transformer'
  m.mlp_widths = (1024, 512, 256)
  m.norm_groups = 32
  m.cnn_base_width = 64
  m.cnn_channel_mults = (1, 1, 1, 1, 2, 2, 3, 4)
  m.cnn_num_res_blocks = 1  # the paper: 3; why: docs/decisions.md#cnn-depth
  m.cnn_attention_factors = (32, 64)  # downsampling factors that get attention
  m.cnn_resample = 'pool'  # the paper: 'resblock'; why: docs/decisions.md#cnn-depth
  m.num_heads = 4  # attention heads of the CNN U-Net
  m.gate_hidden = 64  # time MLP of the mlp_cnn blend
  m.transformer_genes_per_token = 16
  m.transformer_layers = 12
  m.transformer_dim = 384
  m.transformer_heads = 6
  m.dropout = 0.0
  m.dtype = 'float32'  # compute dtype: 'float32' | 'bfloat16' (GPU/TPU; not faster on CPU)

  # ----------------------------------------------------------- diffusion
  c.diffusion = df = ml_collections.ConfigDict()
  df.schedule = 'cosine'  # 'cosine' | 'linear'
  df.num_steps = 500  # T
  df.label_dropout = 0.1  # probability of the null label: trains classifier-free guidance
  # What the network predicts (gdiff.diffusion.PREDICTIONS): 'eps' (the paper) | 'v'.
  # The val loss (and the best checkpoint) is in the chosen target's units.
  df.prediction = 'eps'

  # --------------------------------------------------------------- train
  c.train = t = ml_collections.ConfigDict()
  t.num_steps = 2000
  t.learning_rate = 2e-4
  t.warmup_steps = 100
  t.weight_decay = 0.0  # AdamW decoupled weight decay
  t.grad_clip = 1.0  # global-norm clipping; 0 disables it
  t.ema_decay = 0.999  # EMA of the parameters (sampled by default); 0 disables it
  # Recombination augmentation (gdiff.augment): each training example becomes, with
  # probability `recombine_prob`, a mosaic of itself and a same-class partner from the batch,
  # switching at group boundaries with segments of mean `recombine_segment_groups` groups;
  # new mosaics every step, so no training person is shown whole. 0 disables it.
  t.recombine_segment_groups = 0.0
  t.recombine_prob = 1.0
  t.log_every = 50
  t.eval_every = 250
  t.checkpoint_every = 250
  t.keep_checkpoints = 3

  # -------------------------------------------------------------- sample
  c.sample = sm = ml_collections.ConfigDict()
  sm.num = 0  # 0: as many as the real train split, in its label proportions
  # generator 'ar': divides the logits (1: the fitted model).
  sm.temperature = 1.0  # why: docs/decisions.md#ar-penalties-temperature-and-iterations
  sm.class_counts = ''  # e.g. 'case:100,control:200'; overrides `num`
  sm.method = 'ddim'  # 'ddpm' | 'ddim' | 'dpmpp2m' (DPM-Solver++(2M))
  sm.steps = 50  # DDIM / DPM-Solver++ steps (DDPM always uses all T)
  # DDIM eta (0: deterministic; 1: ancestral noise between the visited steps).
  sm.eta = 1.0  # why: docs/decisions.md#sampler-eta
  sm.guidance = 0.0  # classifier-free guidance weight w (0: plain conditional)
  # Clip the predicted x0 to [-clip_x0, clip_x0] at every step (0: no clipping). The
  # embedding is z-scored; carriers of rare variants reach |z| ~ 7, so keep it generous.
  sm.clip_x0 = 10.0
  # With embedding.decode='calibrated': 'matched' refits the decode thresholds on the
  # synthetic cohort's own reconstructions (its first `calibration_people`, 0: all) so that
  # its genotype frequencies equal train's; 'train' keeps those fit on train reconstructions.
  # Matching publishes nothing beyond train genotype frequencies (summary statistics).
  sm.decode_thresholds = 'matched'  # why: docs/decisions.md#decode-thresholds
  sm.calibration_people = 4096
  sm.checkpoint = 'best'  # 'best' (val loss) | 'latest' | a step number
  sm.use_ema = True
  sm.batch_size = 256  # samples per sampler call (all devices together)
  sm.seed = 0  # with `seed`: the labels' order and every sample's noise
  # Cohort name: '' writes W/samples/, NAME writes W/samples/NAME/ (earlier cohorts stay;
  # --mode=evaluate with the same NAME judges that one and reports beside it).
  sm.out = ''
  # Release gate (gdiff.privacy.gate): before anything is written, synthetic people closer to
  # a training person than the held-out (val) people's `distance_percentile` nearest distance,
  # or KING-robust relatives of one (up to `kinship_degree`: 0 off, 1, 2), are redrawn.
  sm.gate = g = ml_collections.ConfigDict()
  g.enabled = True  # why: docs/decisions.md#release-gate
  g.distance_percentile = 1.0  # 0: no distance rule
  g.distance_min_heldout = 20  # fewer val people: the percentile is noise; rule skipped
  g.kinship_degree = 2  # duplicates, first and second degree (plink2's KING ranges)
  # KING's ranges are genome-wide averages: with fewer autosomal SNPs, or spanning fewer Mb,
  # unrelated people read as relatives (kg1's 4 Mb: most real held-out people); rule skipped.
  g.kinship_min_snps = 1000
  g.kinship_min_span_mb = 100.0
  g.max_fraction = 0.1  # the stage fails if more of the synthetic people would be dropped
  g.max_rounds = 10  # redraw rounds for replacements that are flagged again
  g.block_size = 1024  # rows per tile of the distance and kinship passes

  # ------------------------------------------------------------ evaluate
  c.evaluate = ev = ml_collections.ConfigDict()
  ev.classifiers = ('logreg', 'mlp', 'cnn', 'transformer')
  ev.seeds = 3
  # Classifier seeds of each baseline row (the first of `seeds`; 0: all of them); gdiff's
  # own row always has every seed. Each seed is 4 classifier fits per row: docs/benchmarks.md.
  ev.baseline_seeds = 0  # why: docs/decisions.md#evaluate-cost
  ev.classifier_steps = 300
  ev.augmentation_fractions = (0.05, 0.1, 0.2, 0.5)
  ev.ld_max_distance_snps = 50
  ev.baselines = ('independent', 'gaussian', 'mosaic', 'resample')
  ev.block_size = 1024  # rows per block in distance computations
  # Rows (and the attacks, studies, reference row) judged at once, in threads
  # (evaluate/parallel.py): two keep 2 CPU cores busy where one leaves one idle; the report
  # does not depend on it (docs/benchmarks.md#evaluate-wall-clock-issue-15).
  ev.workers = 2
  ev.num_pcs = 10  # PCA (fit on real train) for the two-sample AUC and the plot
  # Mosaic baseline: mean copied run lengths in SNPs, one row each (mosaic@25, ...): the
  # curve from private to faithful that gdiff is judged against (report.dominance).
  ev.mosaic_segment_snps = (25, 50, 100, 200, 400)  # why: docs/decisions.md#mosaic-segment
  ev.augmentation_classifier = 'mlp'  # classifier of the augmentation curve ('' skips it)
  # Whole-genotype detection AUC (evaluate/detection.py) on at most this many people per
  # side (0: all); its cost grows as people² x SNPs.
  ev.detection_max_people = 1000
  ev.genotype_privacy = True  # also Hamming-distance privacy metrics on decoded genotypes
  # Privacy metrics on at most this many people per set (train, test, each synthetic
  # cohort; seeded subsample); 0 uses all. Each set costs a few N x N distance passes.
  ev.privacy_max_people = 0
  # The real split held out for privacy (non-members), realism (reference) and classifier
  # accuracy: 'test' (final numbers) or 'val' (sweeps that tune settings; test is not read,
  # classifiers choose their step on one stratified half of val and report on the other).
  ev.holdout = 'test'
  # Utility on genotypes with scikit-learn (evaluate/genotype_utility.py): 'logreg' (all
  # SNPs), 'hgb' (gradient boosting on the genotype_max_snps SNPs most associated with the
  # label in real train; its cost grows with the SNP count). () skips it.
  ev.genotype_classifiers = ('logreg', 'hgb')
  ev.genotype_max_snps = 256
  ev.gwas = True  # plink2 --glm concordance for case/control labels (evaluate/gwas.py)
  # Membership attacks (gdiff.evaluate.attacks) list the most exposed training people by ID
  # in W/report/exposed_people.tsv: this many (0: every training person).
  ev.exposed_people = 50
  return c


def cpu_small(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Networks small enough to train on a laptop CPU (mlp_cnn: 1.77M parameters at 128 groups).

  The cohort configs' default; their training length stays their own.
  Why: docs/decisions.md#cpu-small-preset.
  """
  m = c.model
  m.mlp_widths = (256, 128, 64)
  m.norm_groups = 8
  m.cnn_base_width = 32
  m.cnn_channel_mults = (1, 2, 2)
  m.cnn_num_res_blocks = 1
  m.cnn_attention_factors = (4,)
  m.cnn_resample = 'resblock'  # as measured for the :diffusion recipes
  m.transformer_layers = 2
  m.transformer_dim = 64
  m.transformer_heads = 4
  c.train.learning_rate = 1e-3  # why: docs/decisions.md#learning-rate
  return c


def paper_networks(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The paper's networks exactly: 3 ResBlocks per U-Net level, resampling in ResBlocks."""
  c.model = get_config().model
  c.model.cnn_num_res_blocks = 3
  c.model.cnn_resample = 'resblock'
  return c


def paper(c: ml_collections.ConfigDict, num_steps: int) -> ml_collections.ConfigDict:
  """The paper's sizes: networks, T=500, lr 2e-4, batch 32; `num_steps` ~100 epochs.

  For a GPU/TPU and a real cohort. gdiff's own additions stay on (EMA, gradient clipping,
  label dropout for guidance, recombination augmentation); set train.ema_decay=0,
  train.grad_clip=0 and train.recombine_segment_groups=0 for the paper's exact optimiser
  and data. Why: docs/decisions.md#paper-preset.
  """
  c.generator = 'diffusion'
  paper_networks(c)
  c.diffusion.num_steps = 500
  c.diffusion.label_dropout = 0.1
  c.input.batch_size = 32
  c.train.learning_rate = 2e-4
  c.train.warmup_steps = 100
  c.train.num_steps = num_steps
  c.train.eval_every = 1000
  c.train.checkpoint_every = 1000
  c.embedding.group_multiple = 1024  # the paper pads genes to a multiple of 1024
  c.sample.method = 'ddpm'
  return c


def quick(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A first look in about 3 minutes on 2 CPU cores: one ar context, and an evaluate with one
  classifier seed, fewer baselines (three mosaic points) and no augmentation curve.

  The cohort and the generator's data path are the default's; numbers are noisier.
  """
  c.ar.context_snps = (16,)  # one fit instead of a choice on val
  ev = c.evaluate
  ev.classifiers = ('logreg', 'mlp')
  ev.seeds = 1
  ev.baselines = ('independent', 'mosaic')
  ev.mosaic_segment_snps = (25, 100, 400)
  ev.augmentation_classifier = ''
  ev.genotype_classifiers = ('logreg',)
  ev.detection_max_people = 500
  return c


def with_variant(
  c: ml_collections.ConfigDict, arg: str | None, variants: dict, config_file: str
) -> ml_collections.ConfigDict:
  """`variants[arg]` applied to the default `c` (`--config=FILE:arg`); no arg: the default."""
  name = arg or 'default'
  if name not in variants:
    raise ValueError(f'{config_file}: unknown variant {arg!r} (known: {", ".join(variants)})')
  return variants[name](c)
