"""The metric families and the cohorts they judge, picked from name tables.

A metric is `metric(ctx, cohort) -> (values, curves)`: `values` (a dict, or None where
it does not apply) goes into its family's section of a cohort's results in
metrics.json, `curves` (arrays) into the report's plots. The real side it compares
with comes from a builder here, computed once per evaluation: `ctx.reference(builder)`.

  FAMILIES        section -> metrics, for every method (gdiff and each baseline).
  REFERENCE_ROWS  section -> metrics, for the real held-out people (the `reference`
                  row: what sampling noise alone gives).
  STUDIES         top-level key -> metrics, for gdiff's cohort only (augmentation).
  methods(ctx)    the cohorts judged, as (name, make) entries: gdiff, then each baseline.

A new metric is a function added to its family's tuple; a new family is one more
entry; a baseline at several settings is one row per setting (`SWEEPS`, `baseline_rows`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import numpy as np

from gdiff import rng
from gdiff.errors import InputError
from gdiff.evaluate import (
  baselines,
  classifiers,
  context,
  detection,
  genetics,
  genome,
  genotype_utility,
  gwas,
  privacy,
  protocol,
)

# metric(ctx, cohort) -> (values or None, curves)
Metric = Callable[[context.Context, context.Cohort], tuple[dict | None, dict]]


def cap_rows(n: int, cap: int, seed) -> np.ndarray:
  """All rows, or a seeded sorted subsample of `cap` of them (cap > 0)."""
  if cap <= 0 or n <= cap:
    return np.arange(n)
  return np.sort(np.random.default_rng(seed).choice(n, cap, replace=False))


# ------------------------------------------------------------ real references
def genetic_reference(ctx) -> dict:
  """genetics.real_reference of real train and the held-out split."""
  held = ctx.holdout.name
  return genetics.real_reference(
    ctx.dosage['train'],
    ctx.dosage[held],
    ctx.chrom_S,
    ctx.max_lag,
    int(ctx.ev.num_pcs),
    ctx.block_size,
    ctx.labels['train'],
    ctx.num_classes,
    pos_S=ctx.pos_S,
  )


# space -> (distance, the real splits' features, a cohort's features)
PRIVACY_SPACES = {
  'embedding': ('angular', lambda ctx: ctx.emb, lambda c: c.emb_NxGxC),
  'genotype': ('hamming', lambda ctx: ctx.dosage, lambda c: c.dosage_NxS),
}


def privacy_references(ctx) -> dict:
  """space -> privacy.Reference of real train (members) and the held-out split."""
  held, cap = ctx.holdout.name, int(ctx.ev.privacy_max_people)
  pick = {
    s: cap_rows(len(ctx.dosage[s]), cap, rng.numpy_stream(ctx.seed, 'privacy_rows', i))
    for i, s in enumerate(('train', held))
  }
  spaces = ('embedding', 'genotype') if ctx.ev.genotype_privacy else ('embedding',)
  refs = {}
  for space in spaces:
    metric, real, _ = PRIVACY_SPACES[space]
    x = real(ctx)
    refs[space] = privacy.make_reference(
      x['train'][pick['train']], x[held][pick[held]], metric, ctx.block_size, ctx.seed
    )
  return refs


def _real_trained(ctx, sets: dict, num_classes: int) -> dict:
  return {
    c: classifiers.train_and_test(
      c, sets['train'], sets['select'], sets['report'], num_classes, ctx.steps, ctx.seeds
    )
    for c in ctx.ev.classifiers
  }


def real_utility(ctx) -> dict:
  """Classifiers trained on real train, shared by every method's recovery."""
  return _real_trained(ctx, ctx.classifier_sets, ctx.num_classes)


def hard_pair(ctx) -> tuple[int, int] | None:
  """protocol.hard_pair of the real-train F_ST: label ids of the two most similar classes."""
  return protocol.hard_pair(ctx.reference(genetic_reference)['fst_train'])


def hard_pair_names(ctx) -> tuple[str, str] | None:
  pair = hard_pair(ctx)
  return None if pair is None else (ctx.classes[pair[0]], ctx.classes[pair[1]])


def hard_pair_sets(ctx) -> dict:
  """The classifier sets restricted to the hard pair (a binary task)."""
  return {s: protocol.restrict(*xy, hard_pair(ctx)) for s, xy in ctx.classifier_sets.items()}


def real_hard_pair_utility(ctx) -> dict:
  return _real_trained(ctx, ctx.reference(hard_pair_sets), 2)


def real_train(ctx) -> baselines.RealTrain:
  """What the baselines learn from."""
  return baselines.RealTrain(
    ctx.dosage['train'], ctx.labels['train'], ctx.chrom_S, ctx.codec, ctx.emb['train']
  )


# ------------------------------------------------------------ families
def privacy_metrics(ctx, cohort):
  """privacy.evaluate in every space, on at most evaluate.privacy_max_people people."""
  refs = ctx.reference(privacy_references)
  rows = cap_rows(
    len(cohort.dosage_NxS),
    int(ctx.ev.privacy_max_people),
    rng.numpy_stream(ctx.seed, 'privacy_rows', 2),
  )
  values, dcr = {}, {}
  for space, ref in refs.items():
    features = PRIVACY_SPACES[space][2](cohort)
    values[space], dcr[space] = privacy.evaluate(ref, features[rows], seed=ctx.seed)
  if cohort.emb_as_sampled_NxGxC is not None:
    values['embedding_as_sampled'], _ = privacy.evaluate(
      refs['embedding'], cohort.emb_as_sampled_NxGxC[rows], seed=ctx.seed
    )
  return values, {'dcr': dcr.get('genotype', dcr['embedding'])}


def realism_metrics(ctx, cohort):
  """genetics.compare with real train (PCA AUC: against the held-out split)."""
  return genetics.compare(
    ctx.reference(genetic_reference),
    cohort.dosage_NxS,
    ctx.chrom_S,
    ctx.max_lag,
    ctx.block_size,
    ctx.seed,
    cohort.label_ids_N,
  )


def _detection(ctx, real_NxS, judged_NxS) -> dict:
  """detection.detection_auc with the same subsample and folds for every cohort."""
  return detection.detection_auc(
    real_NxS,
    judged_NxS,
    ctx.chrom_S,
    rng.numpy_stream(ctx.seed, 'detection'),
    int(ctx.ev.detection_max_people),
  )


def genome_reference(ctx) -> genome.Reference | None:
  """genome.reference of real train: the SNP pairs and per-chromosome PC1 axes."""
  return genome.reference(
    ctx.dosage['train'], ctx.labels['train'], ctx.chrom_S, rng.numpy_stream(ctx.seed, 'genome')
  )


def genome_metrics(ctx, cohort):
  """Genome-wide checks (realism.genome); none with fewer than 2 chromosomes."""
  values = genome.checks(ctx.reference(genome_reference), cohort.dosage_NxS, cohort.label_ids_N)
  return (None if values is None else {'genome': values}), {}


def genome_reference_row(ctx, cohort):
  """The held-out people's genome-wide checks, and real train's (`genome_train`)."""
  ref = ctx.reference(genome_reference)
  if ref is None:
    return None, {}
  held = genome.checks(ref, cohort.dosage_NxS, cohort.label_ids_N)
  train = genome.checks(ref, ctx.dosage['train'], ctx.labels['train'])
  return {'genome': held, 'genome_train': train}, {}


def detection_metrics(ctx, cohort):
  """Whole-genotype detection AUC: the held-out people vs the cohort."""
  return _detection(ctx, ctx.dosage[ctx.holdout.name], cohort.dosage_NxS), {}


def _summarise_utility(u: dict) -> dict:
  rec = [v['recovery']['mean'] for v in u.values() if isinstance(v, dict) and 'recovery' in v]
  if rec:
    u['recovery_min'] = float(np.min(rec))
    u['recovery_mean'] = float(np.mean(rec))
  return u


def utility_metrics(ctx, cohort):
  """Recovery of each classifier trained on the cohort's embedding."""
  sets = ctx.classifier_sets
  u = classifiers.utility(
    ctx.ev.classifiers,
    (cohort.emb_NxGxC, cohort.label_ids_N),
    ctx.reference(real_utility),
    sets['select'],
    sets['report'],
    ctx.num_classes,
    ctx.steps,
    ctx.seeds_of(cohort),
  )
  return _summarise_utility(u), {}


def hard_pair_metrics(ctx, cohort):
  """Recovery on the hard pair alone (None: < 3 classes, or the cohort lacks one of them)."""
  pair = hard_pair(ctx)
  if pair is None:
    return None, {}
  syn = protocol.restrict(cohort.emb_NxGxC, cohort.label_ids_N, pair)
  if len(np.unique(syn[1])) != 2:
    return None, {}
  hard = ctx.reference(hard_pair_sets)
  u = classifiers.utility(
    ctx.ev.classifiers,
    syn,
    ctx.reference(real_hard_pair_utility),
    hard['select'],
    hard['report'],
    2,
    ctx.steps,
    ctx.seeds_of(cohort),
  )
  return _summarise_utility(u), {}


def genotype_sets(ctx) -> dict:
  """The classifier sets (train, select, report) on dosages instead of the embedding."""
  return protocol.classifier_sets(ctx.holdout.name, ctx.dosage, ctx.labels, ctx.seed)


def genotype_features(ctx) -> genotype_utility.Features:
  x, y = ctx.reference(genotype_sets)['train']
  return genotype_utility.fit_features(x, y, int(ctx.ev.genotype_max_snps))


def real_genotype_utility(ctx) -> dict:
  """scikit-learn classifiers trained on real train, shared by every method's recovery."""
  sets, features = ctx.reference(genotype_sets), ctx.reference(genotype_features)
  return {
    name: genotype_utility.train_and_test(
      name, features, sets['train'], sets['report'], ctx.num_classes
    )
    for name in ctx.ev.genotype_classifiers
  }


def genotype_utility_metrics(ctx, cohort):
  """Recovery of scikit-learn classifiers trained on the cohort's genotypes (None: off)."""
  if not ctx.ev.genotype_classifiers:
    return None, {}
  u = genotype_utility.utility(
    ctx.ev.genotype_classifiers,
    ctx.reference(genotype_features),
    (cohort.dosage_NxS, cohort.label_ids_N),
    ctx.reference(real_genotype_utility),
    ctx.reference(genotype_sets)['report'],
    ctx.num_classes,
  )
  return u, {}


def gwas_skip_reason(ctx) -> str | None:
  """Why the GWAS concordance is not computed (None: it is)."""
  if not ctx.ev.gwas:
    return 'evaluate.gwas is off'
  return gwas.skip_reason(ctx.classes)


def real_gwas(ctx) -> gwas.Association:
  """plink2 --glm on real train."""
  return gwas.run_glm(ctx.dosage['train'], ctx.labels['train'], ctx.classes, ctx.chrom_S, ctx.pos_S)


def gwas_metrics(ctx, cohort):
  """GWAS concordance of the cohort with real train (None: skipped, `gwas_skip_reason`)."""
  if gwas_skip_reason(ctx) is not None:
    return None, {}
  judged = gwas.run_glm(cohort.dosage_NxS, cohort.label_ids_N, ctx.classes, ctx.chrom_S, ctx.pos_S)
  return gwas.concordance(ctx.reference(real_gwas), judged), {}


FAMILIES: dict[str, tuple[Metric, ...]] = {
  'privacy': (privacy_metrics,),
  'realism': (realism_metrics, detection_metrics, genome_metrics),
  'utility': (utility_metrics,),
  'utility_hard_pair': (hard_pair_metrics,),
  'utility_genotype': (genotype_utility_metrics,),
  'gwas': (gwas_metrics,),
}


# ------------------------------------------------------------ the reference row
def realism_reference(ctx, cohort):
  """Real held-out people vs real train (PCA AUC: against train), and the real curves."""
  gref = ctx.reference(genetic_reference)
  values, curves = genetics.compare(
    gref,
    cohort.dosage_NxS,
    ctx.chrom_S,
    ctx.max_lag,
    ctx.block_size,
    ctx.seed,
    cohort.label_ids_N,
    real_pcs=gref['pcs_train'],
  )
  train_curves = genetics.compare(
    gref, ctx.dosage['train'], ctx.chrom_S, ctx.max_lag, ctx.block_size, ctx.seed
  )[1]
  out = {
    'pcs_train': gref['pcs_train'],
    'pcs_holdout': gref['pcs_holdout'],
    'af_train': genetics.allele_frequencies(gref['m_train']),
    'het_train': gref['het_train'],
  }
  for curve in genetics.LD_CURVES:
    if curve in curves:
      out[f'{curve}_holdout'], out[f'{curve}_train'] = curves[curve], train_curves[curve]
  for key in ('ld_distance_edges', 'ld_distance_bp', 'ld_maf_edges'):
    if key in gref:
      out[key] = gref[key]
  return values, out


def detection_reference(ctx, cohort):
  """Detection AUC of real train (as the judged side) vs the held-out people: real vs real."""
  return _detection(ctx, cohort.dosage_NxS, ctx.dosage['train']), {}


def privacy_reference(ctx, cohort):
  """Distances of the held-out people to their nearest train person, per space."""
  refs = ctx.reference(privacy_references)
  values = {
    space: {
      'dcr_holdout_median': float(np.median(r.d_holdout_train)),
      'dcr_holdout_p5': float(np.percentile(r.d_holdout_train, 5)),
    }
    for space, r in refs.items()
  }
  return values, {'dcr_holdout': refs.get('genotype', refs['embedding']).d_holdout_train}


REFERENCE_ROWS: dict[str, tuple[Metric, ...]] = {
  'realism': (realism_reference, detection_reference, genome_reference_row),
  'privacy': (privacy_reference,),
  # The real held-out people's GWAS: what an independent real sample of that size finds.
  'gwas': (gwas_metrics,),
}


# ------------------------------------------------------------ studies of gdiff
def augmentation(ctx, cohort):
  """Accuracy with a fraction of real train, alone and plus the cohort (None: off)."""
  clf = ctx.ev.augmentation_classifier
  if not clf:
    return None, {}
  sets = ctx.classifier_sets
  aug = classifiers.augmentation(
    clf,
    sets['train'],
    (cohort.emb_NxGxC, cohort.label_ids_N),
    sets['select'],
    sets['report'],
    ctx.num_classes,
    ctx.steps,
    ctx.seeds,
    tuple(ctx.ev.augmentation_fractions),
  )
  return {**aug, 'classifier': clf}, {}


STUDIES: dict[str, tuple[Metric, ...]] = {'augmentation': (augmentation,)}


# ------------------------------------------------------------ cohorts and judging
def baseline(ctx, name: str, generator: str, **settings):
  """Cohort `name` from baselines.generate(generator), with gdiff's label counts.

  `settings` replace fields of the baselines' RealTrain, so one generator at several
  settings is several entries: baseline(ctx, 'mosaic@25', 'mosaic', segment_snps=25.0).
  """
  real = dataclasses.replace(ctx.reference(real_train), **settings)
  dosage, label_ids = baselines.generate(generator, real, ctx.counts_K, ctx.seed)
  return ctx.cohort(name, dosage, label_ids)


# generator -> (its RealTrain field, the evaluate option listing its values): one row per
# value, named generator@value ('mosaic@25'); 'generator@value' in evaluate.baselines is that
# one row alone.
SWEEPS = {'mosaic': ('segment_snps', 'mosaic_segment_snps')}


def _setting(name: str, value) -> float:
  try:
    value = float(value)
  except (TypeError, ValueError):
    value = float('nan')
  if not value > 0:
    raise InputError(f'config evaluate.baselines: {name!r}: the setting must be a number > 0')
  return value


def baseline_rows(ev) -> list[tuple[str, str, dict]]:
  """(row name, generator, RealTrain settings) of each row that evaluate.baselines asks for.

  Raises:
    InputError: an unknown generator, a bad setting or two rows of one name.
  """
  rows = []
  for entry in ev.baselines:
    generator, at, value = entry.partition('@')
    if generator not in baselines.BASELINES:
      swept = ', '.join(f'{g}@<value>' for g in SWEEPS)
      raise InputError(
        f'config evaluate.baselines: unknown {entry!r}; known: '
        f'{sorted(baselines.BASELINES)}, {swept}'
      )
    if generator in SWEEPS:
      field, option = SWEEPS[generator]
      values = [value] if at else list(np.atleast_1d(ev[option]))
      for v in values:
        v = _setting(entry, v)
        rows.append((f'{generator}@{v:g}', generator, {field: v}))
    elif at:
      raise InputError(f'config evaluate.baselines: {entry!r}: {generator} takes no setting')
    else:
      rows.append((entry, generator, {}))
  names = [r[0] for r in rows]
  if len(set(names)) < len(names):
    raise InputError(f'config evaluate.baselines: rows {names} repeat a name')
  return rows


def methods(ctx: context.Context) -> list[tuple[str, Callable[[], context.Cohort]]]:
  """The cohorts judged, in report order, as (name, make() -> Cohort) entries.

  The synthetic cohort (gdiff's is named 'gdiff'), then each row of evaluate.baselines
  (`baseline_rows`; generated when made, one at a time).
  """
  return [(ctx.synthetic.name, lambda: ctx.synthetic)] + [
    (name, functools.partial(baseline, ctx, name, generator, **settings))
    for name, generator, settings in baseline_rows(ctx.ev)
  ]


def judge(
  ctx: context.Context, cohort: context.Cohort, table: dict[str, tuple[Metric, ...]]
) -> tuple[dict, dict]:
  """Every metric of `table` on one cohort: ({section: values}, curves)."""
  values, curves = {}, {}
  for section, metrics in table.items():
    for metric in metrics:
      v, c = metric(ctx, cohort)
      if v is not None:
        values.setdefault(section, {}).update(v)
      curves.update(c)
  return values, curves
