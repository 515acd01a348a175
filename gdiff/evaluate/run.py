"""The evaluate stage: judge a synthetic cohort and the baselines against real data.

Reads W/data (the real cohort and its splits), W/embedding/codec.npz and
W/samples/synthetic.h5; generates each baseline of `evaluate.baselines` with the
synthetic cohort's label counts; computes utility, privacy (embedding and
genotype space) and realism for every method; writes W/report/.

`evaluate.holdout` names the real split held out from everything the generator
and the classifiers fit: 'test' (the final report) or 'val' (for sweeps that tune
settings: the test split's genotypes are then never read). See `HOLDOUTS`.
"""

from __future__ import annotations

import json
import logging
import os

import h5py
import ml_collections
import numpy as np

from gdiff import workdir as wd
from gdiff.data import cohort as cohort_lib
from gdiff.errors import InputError
from gdiff.evaluate import baselines, classifiers, genetics, privacy, report

DATA_DIR = wd.DATA
CODEC_FILE = os.path.join(wd.EMBEDDING, wd.CODEC_FILE)
SYNTHETIC_FILE = os.path.join(wd.SAMPLES, wd.SYNTHETIC_PREFIX + '.h5')
REPORT_DIR = wd.REPORT
ENCODE_CHUNK = 1024

# evaluate.holdout (the held-out split: privacy non-members, realism reference) -> the
# splits whose genotypes are read. The classifiers' sets come from `_classifier_sets`.
HOLDOUTS = {'test': ('train', 'val', 'test'), 'val': ('train', 'val')}


def _load_codec(path: str):
  """Codec.load, behind a name tests can replace."""
  from gdiff.embedding import codec as codec_lib
  return codec_lib.Codec.load(path)


def encode(codec, dosage_NxS: np.ndarray) -> np.ndarray:
  """codec.encode in chunks, as float32 numpy (N, G, C)."""
  parts = [np.asarray(codec.encode(dosage_NxS[a:a + ENCODE_CHUNK]), np.float32)
           for a in range(0, len(dosage_NxS), ENCODE_CHUNK)]
  return np.concatenate(parts)


def load_synthetic(path: str, classes: tuple[str, ...], num_snps: int) -> dict:
  """Reads synthetic.h5 and checks it against the real cohort."""
  if not os.path.exists(path):
    raise InputError(f'{path}: no synthetic cohort; run --mode=sample first')
  with h5py.File(path, 'r') as f:
    out = {'dosage': f['dosage'][()].astype(np.int8),
           'label_ids': f['label_ids'][()].astype(np.int32),
           'emb': f['emb'][()].astype(np.float32) if 'emb' in f else None}
    syn_classes = tuple(json.loads(f.attrs['classes'])) if 'classes' in f.attrs else classes
  if syn_classes != tuple(classes):
    raise InputError(f'{path}: classes {syn_classes} differ from the cohort\'s {tuple(classes)}')
  if out['dosage'].shape[1] != num_snps:
    raise InputError(f'{path}: {out["dosage"].shape[1]} SNPs, the cohort has {num_snps}')
  if len(out['dosage']) < 2:
    raise InputError(f'{path}: fewer than 2 synthetic people')
  return out


def _hard_pair(fst_KxK: np.ndarray | None) -> tuple[int, int] | None:
  """The two most similar classes (lowest real-train F_ST), when there are > 2."""
  if fst_KxK is None or len(fst_KxK) < 3:
    return None
  masked = np.where(np.eye(len(fst_KxK), dtype=bool), np.inf, np.nan_to_num(fst_KxK, nan=np.inf))
  a, b = np.unravel_index(np.argmin(masked), masked.shape)
  return int(min(a, b)), int(max(a, b))


def _restrict(x, y, pair):
  rows = np.isin(y, pair)
  return x[rows], (y[rows] == pair[1]).astype(np.int32)


def _cap_rows(n: int, cap: int, seed) -> np.ndarray:
  """All rows, or a seeded sorted subsample of `cap` of them (cap > 0)."""
  if cap <= 0 or n <= cap:
    return np.arange(n)
  return np.sort(np.random.default_rng(seed).choice(n, cap, replace=False))


def _classifier_sets(holdout: str, emb: dict, lab: dict, seed: int) -> dict:
  """Real (x, y) sets of the classifiers: train, select (chooses the step), report.

  holdout 'test': select = val, report = test. holdout 'val': a seeded class-stratified
  split of val into halves, so the accuracy reported was not also used to choose the step.
  """
  sets = {'train': (emb['train'], lab['train'])}
  if holdout == 'test':
    sets['select'], sets['report'] = (emb['val'], lab['val']), (emb['test'], lab['test'])
  else:
    select, report_rows = classifiers.stratified_halves(lab['val'], seed)
    sets['select'] = emb['val'][select], lab['val'][select]
    sets['report'] = emb['val'][report_rows], lab['val'][report_rows]
  return sets


def _summarise_utility(u: dict) -> dict:
  rec = [v['recovery']['mean'] for v in u.values() if isinstance(v, dict) and 'recovery' in v]
  if rec:
    u['recovery_min'] = float(np.min(rec))
    u['recovery_mean'] = float(np.mean(rec))
  return u


def check_config(ev: ml_collections.ConfigDict) -> None:
  """Refuses unknown names and non-positive counts before any work is done."""
  tables = {'baselines': baselines.BASELINES, 'classifiers': classifiers.CLASSIFIERS}
  for option, table in tables.items():
    for name in ev[option]:
      if name not in table:
        raise InputError(f'config evaluate.{option}: unknown {name!r}; known: {sorted(table)}')
  clf = ev.augmentation_classifier
  if clf and clf not in classifiers.CLASSIFIERS:
    raise InputError(f'config evaluate.augmentation_classifier: unknown {clf!r}; '
                     f'known: {sorted(classifiers.CLASSIFIERS)}')
  for option in ('seeds', 'classifier_steps', 'block_size', 'ld_max_distance_snps'):
    if int(ev[option]) < 1:
      raise InputError(f'config evaluate.{option}={ev[option]!r}: must be >= 1')
  if ev.holdout not in HOLDOUTS:
    raise InputError(f'config evaluate.holdout={ev.holdout!r}: must be one of '
                     f'{", ".join(repr(h) for h in HOLDOUTS)}')


def _holdout_notes(holdout: str, num_select: int, num_report: int) -> list[str]:
  """The protocol notes that depend on evaluate.holdout."""
  if holdout == 'test':
    return ['Held-out split: test. Generator and codec fit on real train; classifier steps '
            'chosen on REAL val for both the real-trained and the synthetic-trained model; '
            'test only reports.']
  return [
      'Held-out split: VAL (evaluate.holdout=\'val\'); the test split was not read. '
      'Generator and codec fit on real train. Metric '
      'names containing "test" (aa_truth_test, dcr_test_p5, majority_acc_test, ...) refer to '
      'the held-out split, here val.',
      f'Privacy (non-members, DCR reference) and realism (reference row, PCA two-sample AUC) '
      f'use all of real val. Classifiers (utility, hard pair, augmentation) use a seeded, '
      f'class-stratified split of val: the select half ({num_select} people) chooses the '
      f'step for the real-trained and the synthetic-trained model alike, the report half '
      f'({num_report} people) gives the accuracy reported (and majority_acc_test).',
      'With sample.checkpoint=\'best\' val also chose the generator\'s checkpoint (val '
      'diffusion loss), so val numbers may flatter gdiff slightly; report final numbers with '
      'evaluate.holdout=\'test\'.']


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Runs every metric for gdiff and the baselines and writes W/report/.

  Args:
    config: the full config (uses `seed` and `evaluate`).
    workdir: the pipeline's working directory.

  Returns:
    The metrics dict that was written to W/report/metrics.json.
  """
  ev = config.evaluate
  check_config(ev)
  held = ev.holdout
  used = HOLDOUTS[held]
  block = int(ev.block_size)
  cohort = cohort_lib.load_cohort(os.path.join(workdir, DATA_DIR))
  chrom = cohort.variants().chrom
  classes, k = cohort.classes, len(cohort.classes)
  # Only the splits this holdout uses are read (with 'val', never the test genotypes).
  dos = {s: cohort.dosages(s) for s in used}
  lab = {s: cohort.label_ids[cohort.indices(s)] for s in used}
  for s in used:
    if len(dos[s]) < 2:
      raise InputError(f'{workdir}/{DATA_DIR}: split {s!r} has fewer than 2 people')
  if held == 'val' and len(dos['val']) < 4:
    raise InputError(f'{workdir}/{DATA_DIR}: split \'val\' has fewer than 4 people; '
                     f'evaluate.holdout=\'val\' halves it')
  codec = _load_codec(os.path.join(workdir, CODEC_FILE))
  emb = {s: encode(codec, dos[s]) for s in used}
  syn = load_synthetic(os.path.join(workdir, SYNTHETIC_FILE), classes, len(chrom))
  counts = np.bincount(syn['label_ids'], minlength=k)
  logging.info('evaluate: %d synthetic people %s; real %s %s; held out: %s',
               len(syn['dosage']), counts.tolist(), '/'.join(used),
               [len(dos[s]) for s in used], held)

  methods = {'gdiff': (syn['dosage'], syn['label_ids'])}
  real_train = baselines.RealTrain(dos['train'], lab['train'], chrom, codec, emb['train'],
                                   float(ev.mosaic_segment_snps))
  for name in ev.baselines:
    methods[name] = baselines.generate(name, real_train, counts, config.seed)

  # Real-side references, computed once and shared by every method.
  lag = int(ev.ld_max_distance_snps)
  # The held-out split plays 'test' in the privacy and realism code (and metric names).
  gref = genetics.real_reference(dos['train'], dos[held], chrom, lag, int(ev.num_pcs), block,
                                 lab['train'], k)
  cap = int(ev.privacy_max_people)
  pick = {s: _cap_rows(len(dos[s]), cap, [config.seed, i]) for i, s in enumerate(('train', held))}
  prefs = {'embedding': privacy.make_reference(emb['train'][pick['train']],
                                               emb[held][pick[held]], 'angular', block,
                                               config.seed)}
  if ev.genotype_privacy:
    prefs['genotype'] = privacy.make_reference(dos['train'][pick['train']],
                                               dos[held][pick[held]], 'hamming', block,
                                               config.seed)
  seeds = [int(config.seed) * 1000 + i for i in range(int(ev.seeds))]
  steps = int(ev.classifier_steps)
  sets = _classifier_sets(held, emb, lab, config.seed)
  select_xy, report_xy = sets['select'], sets['report']
  real_results = {c: classifiers.train_and_test(c, sets['train'], select_xy, report_xy, k,
                                                steps, seeds) for c in ev.classifiers}
  pair = _hard_pair(gref['fst_train'])
  if pair is not None:
    hard = {s: _restrict(*xy, pair) for s, xy in sets.items()}
    real_hard = {c: classifiers.train_and_test(c, hard['train'], hard['select'], hard['report'],
                                               2, steps, seeds) for c in ev.classifiers}

  results, curves = {}, {}
  for name, (dosage, label_ids) in methods.items():
    logging.info('evaluate: %s', name)
    emb_syn = encode(codec, dosage)
    if name == 'gdiff':
      gdiff_emb = emb_syn
    r = {'privacy': {}, 'num_people': len(dosage)}
    rows = _cap_rows(len(dosage), cap, [config.seed, 2])
    for space, pref in prefs.items():
      r['privacy'][space], dcr = privacy.evaluate(pref, (emb_syn if space == 'embedding'
                                                         else dosage)[rows], seed=config.seed)
      if space == 'genotype' or 'dcr' not in curves.get(name, {}):
        curves.setdefault(name, {})['dcr'] = dcr
    if name == 'gdiff' and syn['emb'] is not None:
      r['privacy']['embedding_as_sampled'], _ = privacy.evaluate(
          prefs['embedding'], syn['emb'][rows], seed=config.seed)
    r['realism'], c = genetics.compare(gref, dosage, chrom, lag, block, config.seed, label_ids)
    curves[name].update(c)
    u = classifiers.utility(ev.classifiers, (emb_syn, label_ids), real_results, select_xy,
                            report_xy, k, steps, seeds)
    r['utility'] = _summarise_utility(u)
    if pair is not None:
      syn_hard = _restrict(emb_syn, label_ids, pair)
      if len(np.unique(syn_hard[1])) == 2:
        r['utility_hard_pair'] = _summarise_utility(classifiers.utility(
            ev.classifiers, syn_hard, real_hard, hard['select'], hard['report'], 2, steps,
            seeds))
    results[name] = r

  set_names = {'test': ('val', 'test'), 'val': ('val (select half)', 'val (report half)')}
  metrics = {'holdout': held, 'methods': results, 'classes': list(classes),
             # On the set accuracies are reported on (test, or val's report half).
             'majority_acc_test': float(np.bincount(report_xy[1], minlength=k).max()
                                        / len(report_xy[1])),
             'label_counts_synthetic': counts.tolist(),
             'splits': {s: len(cohort.indices(s)) for s in cohort_lib.SPLITS},
             'classifier_sets': {
                 'select': set_names[held][0], 'report': set_names[held][1],
                 'num_select': len(select_xy[1]), 'num_report': len(report_xy[1])},
             'num_snps': len(chrom), 'seeds': seeds, 'classifier_steps': steps,
             'paper': report.PAPER,
             'targets': [{'metric': p, 'name': n, 'op': op, 'target': t}
                         for p, n, op, t in report.TARGETS]}
  if pair is not None:
    metrics['hard_pair'] = [classes[pair[0]], classes[pair[1]]]

  # Real held-out people judged like a synthetic cohort: what sampling noise alone gives.
  ref_realism, ref_curves = genetics.compare(gref, dos[held], chrom, lag, block, config.seed,
                                             lab[held], real_pcs=gref['pcs_train'])
  metrics['reference'] = {'realism': ref_realism, 'privacy': {
      space: {'dcr_test_median': float(np.median(p.d_test_train)),
              'dcr_test_p5': float(np.percentile(p.d_test_train, 5))}
      for space, p in prefs.items()}}
  curves['real'] = {'pcs_train': gref['pcs_train'], 'pcs_test': gref['pcs_test'],
                    'af_train': genetics.allele_frequencies(gref['m_train']),
                    'het_train': gref['het_train'],
                    'ld_decay_test': ref_curves['ld_decay'],
                    'dcr_test': prefs.get('genotype', prefs['embedding']).d_test_train}
  train_curves = genetics.compare(gref, dos['train'], chrom, lag, block, config.seed)[1]
  curves['real']['ld_decay_train'] = train_curves['ld_decay']

  if ev.augmentation_classifier:
    clf = ev.augmentation_classifier
    aug = classifiers.augmentation(
        clf, sets['train'], (gdiff_emb, syn['label_ids']),
        select_xy, report_xy, k, steps, seeds, tuple(ev.augmentation_fractions))
    aug['classifier'] = clf
    metrics['augmentation'] = aug

  metrics['checks'] = report.checks(results)
  metrics['notes'] = _holdout_notes(held, len(select_xy[1]), len(report_xy[1])) + [
      'Synthetic genotypes are decoded, then re-encoded with the codec (what a user shares); '
      'privacy.embedding_as_sampled uses the embedding as sampled.',
      'NNAA on equal-size sets: n = min(n_real, n_synthetic), seeded subsample without '
      f'replacement of the larger set; privacy loss = AA_TS({held}) - AA_TS(train).',
      f'Membership inference: score = -(distance to nearest synthetic); train members vs '
      f'{held} non-members, balanced by subsampling the larger split.',
      'Augmentation: the generator saw all of real train, so gains are an upper bound.',
      f'Baselines use the synthetic cohort\'s label counts {counts.tolist()} and seed '
      f'{config.seed}.',
      'Recovery uses plain accuracy (the paper\'s); with unbalanced classes compare it with '
      'majority_acc_test and the balanced accuracies.',
      f'Realism reference row = real {held} judged like a synthetic cohort (its PCA AUC is '
      f'{held} vs train): the level sampling noise allows.',
  ]
  if pair is not None:
    metrics['notes'].append(
        f'utility_hard_pair: the two classes with the lowest real-train F_ST '
        f'({classes[pair[0]]} vs {classes[pair[1]]}), as a binary task.')
  paths = report.write(os.path.join(workdir, REPORT_DIR), metrics, curves)
  logging.info('evaluate: wrote %s', paths)
  return metrics
