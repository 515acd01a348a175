"""The evaluate stage: judge a synthetic cohort and the baselines against real data.

Reads W/data (the real cohort and its splits), W/embedding/codec.npz and
W/samples/synthetic.h5; judges gdiff's cohort and each baseline of
`evaluate.baselines` (the mosaic at each of evaluate.mosaic_segment_snps: the mosaic
curve) with every metric family (privacy in embedding and genotype space, realism with
the detection AUC, utility: `families.FAMILIES`), the real held-out people as the
reference row, and gdiff alone in the studies (augmentation); gdiff against the mosaic
curve (`report.dominance`); writes W/report/.

`evaluate.holdout` names the real split held out from everything the generator
and the classifiers fit: 'test' (the final report) or 'val' (for sweeps that tune
settings: the test split's genotypes are then never read). See `protocol.HOLDOUTS`.

The rows, the reference row, the studies and the attacks run `evaluate.workers` at a time
in threads (`parallel.pool`); the report does not depend on how many.
"""

from __future__ import annotations

import json
import logging
import os
import time

import h5py
import ml_collections
import numpy as np

from gdiff import workdir as wd
from gdiff.data import cohort as cohort_lib
from gdiff.errors import InputError
from gdiff.evaluate import (
  attacks,
  classifiers,
  context,
  families,
  genotype_utility,
  parallel,
  protocol,
  provenance,
  report,
)

DATA_DIR = wd.DATA
CODEC_FILE = os.path.join(wd.EMBEDDING, wd.CODEC_FILE)


def _load_codec(path: str):
  """Codec.load, behind a name tests can replace."""
  from gdiff.embedding import codec as codec_lib

  return codec_lib.Codec.load(path)


def load_synthetic(path: str, classes: tuple[str, ...], num_snps: int) -> dict:
  """Reads synthetic.h5 and checks it against the real cohort."""
  if not os.path.exists(path):
    raise InputError(f'{path}: no synthetic cohort; run --mode=sample first')
  with h5py.File(path, 'r') as f:
    out = {
      'dosage': f['dosage'][()].astype(np.int8),
      'label_ids': f['label_ids'][()].astype(np.int32),
      'emb': f['emb'][()].astype(np.float32) if 'emb' in f else None,
    }
    syn_classes = tuple(json.loads(f.attrs['classes'])) if 'classes' in f.attrs else classes
  if syn_classes != tuple(classes):
    raise InputError(f"{path}: classes {syn_classes} differ from the cohort's {tuple(classes)}")
  if out['dosage'].shape[1] != num_snps:
    raise InputError(f'{path}: {out["dosage"].shape[1]} SNPs, the cohort has {num_snps}')
  if len(out['dosage']) < 2:
    raise InputError(f'{path}: fewer than 2 synthetic people')
  return out


def check_config(ev: ml_collections.ConfigDict) -> None:
  """Refuses unknown names and non-positive counts before any work is done."""
  families.baseline_rows(ev)  # raises on an unknown baseline or a bad setting
  for name in ev.classifiers:
    if name not in classifiers.CLASSIFIERS:
      raise InputError(
        f'config evaluate.classifiers: unknown {name!r}; known: {sorted(classifiers.CLASSIFIERS)}'
      )
  for name in ev.genotype_classifiers:
    if name not in genotype_utility.GENOTYPE_CLASSIFIERS:
      raise InputError(
        f'config evaluate.genotype_classifiers: unknown {name!r}; '
        f'known: {sorted(genotype_utility.GENOTYPE_CLASSIFIERS)}'
      )
  if int(ev.genotype_max_snps) < 0:
    raise InputError(
      f'config evaluate.genotype_max_snps={ev.genotype_max_snps!r}: must be >= 0 (0: all)'
    )
  clf = ev.augmentation_classifier
  if clf and clf not in classifiers.CLASSIFIERS:
    raise InputError(
      f'config evaluate.augmentation_classifier: unknown {clf!r}; '
      f'known: {sorted(classifiers.CLASSIFIERS)}'
    )
  if int(ev.exposed_people) < 0:
    raise InputError(f'config evaluate.exposed_people={ev.exposed_people!r}: must be >= 0 (0: all)')
  for option in ('seeds', 'classifier_steps', 'block_size', 'ld_max_distance_snps', 'workers'):
    if int(ev[option]) < 1:
      raise InputError(f'config evaluate.{option}={ev[option]!r}: must be >= 1')
  if int(ev.baseline_seeds) < 0:
    raise InputError(
      f'config evaluate.baseline_seeds={ev.baseline_seeds!r}: must be >= 0 (0: evaluate.seeds)'
    )
  if int(ev.detection_max_people) < 0:
    raise InputError(
      f'config evaluate.detection_max_people={ev.detection_max_people!r}: must be >= 0 (0: no cap)'
    )
  if ev.holdout not in protocol.HOLDOUTS:
    raise InputError(
      f'config evaluate.holdout={ev.holdout!r}: must be one of '
      f'{", ".join(repr(h) for h in protocol.HOLDOUTS)}'
    )


def load(
  config: ml_collections.ConfigDict,
  workdir: str,
  synthetic: dict | None = None,
  name: str = 'gdiff',
) -> context.Context:
  """Reads the real splits that evaluate.holdout allows, the codec and gdiff's cohort.

  Args:
    config: the full config.
    workdir: the pipeline's working directory (its real cohort and codec).
    synthetic: the judged cohort as `load_synthetic` returns it (None: the workdir's
      samples/synthetic.h5).
    name: the judged cohort's row name.
  """
  held = protocol.HOLDOUTS[config.evaluate.holdout]
  data_dir = os.path.join(workdir, DATA_DIR)
  cohort = cohort_lib.load_cohort(data_dir)
  # Only the splits this holdout uses are read (with 'val', never the test genotypes).
  dos = {s: cohort.dosages(s) for s in held.splits}
  for s in held.splits:
    if len(dos[s]) < 2:
      raise InputError(f'{data_dir}: split {s!r} has fewer than 2 people')
  if held.name == 'val' and len(dos['val']) < 4:
    raise InputError(
      f"{data_dir}: split 'val' has fewer than 4 people; evaluate.holdout='val' halves it"
    )
  codec = _load_codec(os.path.join(workdir, CODEC_FILE))
  variants = cohort.variants()
  chrom = variants.chrom
  if synthetic is None:
    syn_dir = wd.Layout(workdir).cohort(config.sample.out)  # sample.out names the cohort
    synthetic = load_synthetic(
      os.path.join(syn_dir, wd.SYNTHETIC_PREFIX + '.h5'), cohort.classes, len(chrom)
    )
  syn = synthetic
  gdiff = context.Cohort(
    name, syn['dosage'], syn['label_ids'], context.encode(codec, syn['dosage']), syn['emb']
  )
  ctx = context.Context(
    config,
    tuple(cohort.classes),
    chrom,
    codec,
    dos,
    {s: cohort.label_ids[cohort.indices(s)] for s in held.splits},
    {s: len(cohort.indices(s)) for s in cohort_lib.SPLITS},
    gdiff,
    pos_S=variants.pos,
  )
  logging.info(
    'evaluate: %d synthetic people %s; real %s %s; held out: %s',
    len(syn['dosage']),
    ctx.counts_K.tolist(),
    '/'.join(held.splits),
    [len(dos[s]) for s in held.splits],
    held.name,
  )
  return ctx


def _header(ctx: context.Context, results: dict) -> dict:
  """metrics.json's top level: the protocol around the methods' `results`."""
  held, sets = ctx.holdout, ctx.classifier_sets
  y_select, y_report = sets['select'][1], sets['report'][1]
  out = {
    'holdout': held.name,
    'methods': results,
    'classes': list(ctx.classes),
    # On the set accuracies are reported on (test, or val's report half).
    'majority_acc_holdout': float(
      np.bincount(y_report, minlength=ctx.num_classes).max() / len(y_report)
    ),
    'label_counts_synthetic': ctx.counts_K.tolist(),
    'splits': ctx.split_sizes,
    'classifier_sets': {
      'select': held.select_set,
      'report': held.report_set,
      'num_select': len(y_select),
      'num_report': len(y_report),
    },
    'num_snps': len(ctx.chrom_S),
    'seeds': ctx.seeds,
    'classifier_steps': ctx.steps,
    'paper': report.PAPER,
    'targets': [
      {'metric': p, 'name': protocol.named(n, held.name), 'op': op, 'target': t}
      for p, n, op, t in report.TARGETS
    ],
  }
  if int(ctx.ev.baseline_seeds) > 0:
    out['baseline_seeds'] = ctx.seeds[: int(ctx.ev.baseline_seeds)]
  if families.hard_pair_names(ctx):
    out['hard_pair'] = list(families.hard_pair_names(ctx))
  return out


def _notes(ctx: context.Context) -> list[str]:
  sets = ctx.classifier_sets
  return protocol.notes(
    ctx.holdout.name,
    len(sets['select'][1]),
    len(sets['report'][1]),
    ctx.counts_K,
    ctx.seed,
    families.hard_pair_names(ctx),
  )


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Runs every metric for gdiff and the baselines and writes W/report/.

  Args:
    config: the full config (uses `seed` and `evaluate`).
    workdir: the pipeline's working directory.

  Returns:
    The metrics dict that was written to W/report/metrics.json.
  """
  check_config(config.evaluate)
  ctx = load(config, workdir)
  layout = wd.Layout(workdir)
  cohort_dir = layout.cohort(config.sample.out)
  synthetic_file = os.path.join(cohort_dir, wd.SYNTHETIC_PREFIX + '.h5')
  metrics, curves, exposed = judge_all(
    ctx,
    provenance.provenance(config, workdir, synthetic_file),
    workdir,
    os.path.join(cohort_dir, 'manifest.json'),
  )
  write(layout.cohort_report(config.sample.out), config, metrics, curves, exposed)
  return metrics


def judge_all(
  ctx: context.Context, prov: dict, workdir: str, samples_manifest: str | None = None
) -> tuple[dict, dict, list]:
  """Every method judged by every family, the reference row, the studies and the words.

  Args:
    ctx: from `load`.
    prov: the provenance block (`provenance.provenance`).
    workdir: W (the training people's IDs for the exposure list).
    samples_manifest: the judged cohort's manifest.json (the release gate's counts), if any.

  Returns:
    (metrics, curves, exposed): what `write` writes.
  """
  entries = families.methods(ctx)
  manifest = read_manifest(samples_manifest)
  # gdiff's row first, then the pieces that need no real reference it would be building
  # (threads asking for a reference another thread is building wait for it).
  with parallel.pool(int(ctx.ev.workers)) as submit:
    first = submit(_judge_row, ctx, *entries[0])
    attacked = submit(attacks.evaluate, ctx, workdir, manifest.get('gate'))
    studies = submit(families.judge, ctx, ctx.synthetic, families.STUDIES)
    rows = [submit(_judge_row, ctx, name, make) for name, make in entries[1:]]
    reference = submit(lambda: families.judge(ctx, ctx.holdout_cohort(), families.REFERENCE_ROWS))
  results, curves = {}, {}
  for name, values, row_curves in [r.result() for r in [first, *rows]]:
    results[name], curves[name] = values, row_curves
  metrics = _header(ctx, results)
  metrics['reference'], curves['real'] = reference.result()
  metrics.update(studies.result()[0])
  metrics['checks'] = report.checks(results)
  metrics['judged'] = ctx.synthetic.name
  metrics['dominance'] = report.dominance(results, ctx.synthetic.name)
  metrics['ld_curves'] = report.ld_curves(curves, results)
  metrics['notes'] = _notes(ctx)
  skipped = families.gwas_skip_reason(ctx)
  if skipped:
    metrics['gwas_skipped'] = skipped
  metrics['attacks'], exposed = attacked.result()
  metrics.update(guarantee_fields(manifest))
  metrics['provenance'] = prov
  return metrics, curves, exposed


def _judge_row(ctx: context.Context, name: str, make) -> tuple[str, dict, dict]:
  """(name, results, curves) of one method: its cohort made and judged by every family."""
  logging.info('evaluate: %s', name)
  start = time.perf_counter()
  cohort = make()
  values, curves = families.judge(ctx, cohort, families.FAMILIES)
  # Rows run side by side (evaluate.workers): this line closes the row's log lines.
  logging.info('evaluate: %s judged in %.0f s', name, time.perf_counter() - start)
  return name, {'num_people': len(cohort.dosage_NxS), **values}, curves


def read_manifest(path: str | None) -> dict:
  """The judged cohort's manifest.json ({} when there is none: another tool's file)."""
  if not path or not os.path.exists(path):
    return {}
  with open(path) as f:
    return json.load(f)


def guarantee_fields(manifest: dict) -> dict:
  """The judged cohort's formal guarantees for the verdict (`verdict.guarantees`): `dp`
  (ε, δ of a differentially private fit) and `gate` (people checked and replaced)."""
  out = {}
  if manifest.get('dp'):
    out['dp'] = {k: manifest['dp'][k] for k in ('epsilon', 'delta') if k in manifest['dp']}
  gate = manifest.get('gate') or {}
  if gate.get('enabled'):
    out['gate'] = {
      'checked': int(manifest.get('num_samples', 0)),
      'rejected': int(gate.get('replaced_people', 0)),
      'rule': f'{gate.get("distance_rule", "")}; kinship: {gate.get("kinship_rule", "")}',
    }
  return out


def write(
  out_dir: str, config: ml_collections.ConfigDict, metrics: dict, curves: dict, exposed: list
) -> dict:
  """The report folder: report.md/html, metrics.json, figures, config.json, exposed_people.tsv."""
  paths = report.write(out_dir, metrics, curves, {'config.json': provenance.config_json(config)})
  attacks.write_exposed(out_dir, exposed, config.evaluate.exposed_people)
  logging.info('evaluate: wrote %s', paths)
  return paths
