"""Membership attacks with what a real adversary has, per-person exposure, kinship.

The adversary holds the released synthetic cohort, a reference sample of the same
population (the real held-out split, `evaluate.holdout`) and a target's genotypes,
and asks whether the target was in the training set. Members: a seeded subsample
of train as large as the held-out split; non-members: the held-out people, each
scored against a reference of the other held-out people (leave-one-out); each
member's reference also leaves one (random) held-out person out, so both sides
see references of the same size.

  af_lr     Sankararaman et al. 2009 likelihood ratio of the target's genotypes
            under the synthetic allele frequencies vs the reference's:
            sum_j g_j log(p_syn/p_ref) + (2 - g_j) log((1 - p_syn)/(1 - p_ref)).
  af_homer  Homer et al. 2008: sum_j |y_j - p_ref,j| - |y_j - p_syn,j|, y = g/2.
  distance  a reference-calibrated distance attack: log of the Hamming distance to
            the nearest reference person over the distance to the nearest
            synthetic one (a member sits closer to the synthetic cohort than its
            own population's spread predicts).

Each attack reports its AUC with the Hanley-McNeil standard error and the TPR at
FPR 1 % and 0.1 % where there are at least 100 (1,000) non-members. Every training
person gets a p-value per attack (share of non-members scoring at least as high);
the most exposed, by ID, go to W/report/exposed_people.tsv (the report links it; it
is never part of the synthetic outputs). Kinship (`gdiff.privacy.kinship`): people
with a KING relative in train, held-out vs synthetic, and the release gate's counts
from the judged cohort's manifest.json (read by the evaluate stage).
"""

from __future__ import annotations

import html
import json
import logging
import os

import numpy as np

from gdiff import rng as rng_lib
from gdiff import workdir as wd
from gdiff.data import cohort as cohort_lib
from gdiff.evaluate import distances, privacy
from gdiff.privacy import kinship

EXPOSED_FILE = 'exposed_people.tsv'
FPRS = (0.01, 0.001)


def allele_freq(dosage_NxS: np.ndarray) -> np.ndarray:
  """ALT frequency with half a pseudo-allele on each side (never 0 or 1)."""
  n = len(dosage_NxS)
  return (np.asarray(dosage_NxS, np.float64).sum(0) + 0.5) / (2 * n + 1)


def _af_scores(g_TxS, p_syn_S, p_ref_TxS) -> dict:
  g = np.asarray(g_TxS, np.float64)
  lr = g * np.log(p_syn_S / p_ref_TxS) + (2 - g) * np.log((1 - p_syn_S) / (1 - p_ref_TxS))
  y = g / 2
  homer = np.abs(y - p_ref_TxS) - np.abs(y - p_syn_S)
  return {'af_lr': lr.sum(1), 'af_homer': homer.sum(1)}


def _loo_freq(ref_NxS: np.ndarray, left_out_T: np.ndarray) -> np.ndarray:
  """(T, S) reference frequencies without row left_out_T[t] (pseudo-counts as allele_freq)."""
  total = np.asarray(ref_NxS, np.float64).sum(0)
  n = len(ref_NxS) - 1
  return (total[None] - ref_NxS[left_out_T] + 0.5) / (2 * n + 1)


def scores(targets_TxS, left_out_T, reference_NxS, synthetic_MxS, block_size: int) -> dict:
  """Each attack's score of each target (higher: more likely a member).

  Args:
    targets_TxS: the targets' dosages.
    left_out_T: the reference row each target's reference leaves out (itself for a
      held-out target).
    reference_NxS: the adversary's reference people (the held-out split).
    synthetic_MxS: the released cohort.
    block_size: tile size of the distance passes.
  """
  p_syn = allele_freq(synthetic_MxS)
  parts = [  # blocks of targets: the (T, S) reference frequencies never sit in memory at once
    _af_scores(
      targets_TxS[lo : lo + block_size],
      p_syn,
      _loo_freq(reference_NxS, left_out_T[lo : lo + block_size]),
    )
    for lo in range(0, len(targets_TxS), block_size)
  ]
  out = {name: np.concatenate([part[name] for part in parts]) for name in ('af_lr', 'af_homer')}
  d_ref, i_ref = distances.nearest(targets_TxS, reference_NxS, 'hamming', 2, block_size)
  nearest_ref = np.where(i_ref[:, 0] == left_out_T, d_ref[:, 1], d_ref[:, 0])
  d_syn = distances.nearest(targets_TxS, synthetic_MxS, 'hamming', 1, block_size)[0][:, 0]
  out['distance'] = np.log1p(nearest_ref) - np.log1p(d_syn)
  out['nearest_synthetic'] = d_syn
  return out


ATTACKS = ('af_lr', 'af_homer', 'distance')


def tpr_at_fpr(pos: np.ndarray, neg: np.ndarray, fpr: float) -> float | None:
  """TPR at the threshold that flags at most `fpr` of the negatives (None: too few of them)."""
  if len(neg) < round(1 / fpr):
    return None
  threshold = np.quantile(neg, 1 - fpr, method='higher')
  return float(np.mean(pos > threshold))


def p_values(scores_T: np.ndarray, null_N: np.ndarray) -> np.ndarray:
  """(1 + #{null >= score}) / (1 + N): how unusual each score is among non-members."""
  null = np.sort(null_N)
  at_least = len(null) - np.searchsorted(null, scores_T, side='left')
  return (1 + at_least) / (1 + len(null))


def evaluate(ctx, workdir: str, gate: dict | None = None) -> tuple[dict, list[dict]]:
  """The attacks, kinship and gate summary of gdiff's cohort; the exposed training people.

  Args:
    ctx: the evaluate stage's `context.Context`.
    workdir: W (the training people's sample IDs from W/data).
    gate: the judged cohort's release-gate counts (its manifest's `gate`), if any.

  Returns:
    (the metrics entry, rows of exposed_people.tsv, most exposed first).
  """
  held = ctx.holdout.name
  train, holdout = ctx.dosage['train'], ctx.dosage[held]
  synthetic = ctx.synthetic.dosage_NxS
  block = ctx.block_size
  rng = rng_lib.numpy_stream(ctx.seed, 'attacks')
  n = min(len(train), len(holdout))
  members = np.sort(rng.choice(len(train), n, replace=False))
  # Every train person is scored (exposure); members are a subsample of them.
  everyone = scores(train, rng.integers(len(holdout), size=len(train)), holdout, synthetic, block)
  null = scores(holdout, np.arange(len(holdout)), holdout, synthetic, block)
  out = {'num_members': n, 'num_non_members': len(holdout)}
  for name in ATTACKS:
    pos, neg = everyone[name][members], null[name]
    value = privacy.auc(pos, neg)
    out[name] = {
      'auc': value,
      'auc_se': privacy.auc_standard_error(value, len(pos), len(neg)),
      **{f'tpr_at_fpr_{f:g}': tpr_at_fpr(pos, neg, f) for f in FPRS},
    }
  out['kinship'] = kinship_summary(train, holdout, synthetic, ctx.chrom_S, block)
  if getattr(ctx, 'pos_S', None) is not None:
    snps = kinship.autosomal(ctx.chrom_S)
    out['kinship']['span_mb'] = kinship.span_mb(ctx.chrom_S[snps], np.asarray(ctx.pos_S)[snps])
  out['gate'] = gate
  rows = exposed(workdir, everyone, null, train, synthetic, ctx.chrom_S, block)
  logging.info(
    'evaluate: attacks AUC %s',
    ', '.join(f'{a} {out[a]["auc"]:.3f} ± {out[a]["auc_se"]:.3f}' for a in ATTACKS),
  )
  return out, rows


def kinship_summary(train, holdout, synthetic, chrom_S, block_size: int) -> dict:
  """People with a KING relative in train (by degree), held-out (reference) vs synthetic."""
  snps = kinship.autosomal(chrom_S)
  out = {'autosomal_snps': int(snps.sum())}
  for name, people in (('holdout', holdout), ('synthetic', synthetic)):
    best, _, pairs = kinship.relatives(people[:, snps], train[:, snps], block_size)
    degree = kinship.degree_of(best)
    out[name] = {
      'people': len(people),
      **{f'with_{d}': int(np.sum(degree == d)) for d, _ in kinship.DEGREES},
      'pairs': {d: int(c) for (d, _), c in zip(kinship.DEGREES, pairs.sum(0))},
      'max_kinship': float(best.max()) if len(best) else None,
    }
  return out


def exposed(workdir, everyone, null, train, synthetic, chrom_S, block_size) -> list[dict]:
  """Every training person's exposure (smallest attack p-value first)."""
  cohort = cohort_lib.load_cohort(wd.Layout(workdir).data)
  rows = cohort.indices('train')
  snps = kinship.autosomal(chrom_S)
  kin, _, _ = kinship.relatives(train[:, snps], synthetic[:, snps], block_size)
  p = {a: p_values(everyone[a], null[a]) for a in ATTACKS}
  smallest = np.min([p[a] for a in ATTACKS], axis=0)
  order = np.lexsort((-everyone['distance'], smallest))
  return [
    {
      'rank': r + 1,
      'sample': str(cohort.samples[rows[i]]),
      'label': str(cohort.labels[rows[i]]),
      'min_p': float(smallest[i]),
      **{f'p_{a}': float(p[a][i]) for a in ATTACKS},
      'nearest_synthetic_hamming': float(everyone['nearest_synthetic'][i]),
      'max_kinship_synthetic': float(kin[i]),
    }
    for r, i in enumerate(order)
  ]


def write_exposed(report_dir: str, rows: list[dict], limit: int) -> str:
  """W/report/exposed_people.tsv: the `limit` most exposed training people (0: all)."""
  path = os.path.join(report_dir, EXPOSED_FILE)
  rows = rows[:limit] if limit else rows
  columns = list(rows[0]) if rows else ['rank', 'sample']
  with open(path, 'w') as f:
    f.write('\t'.join(columns) + '\n')
    for row in rows:
      f.write('\t'.join(_cell(row[c]) for c in columns) + '\n')
  return path


def _cell(value) -> str:
  return f'{value:.6g}' if isinstance(value, float) else str(value)


def report_section(metrics: dict) -> str:
  """The report's HTML section: attacks, kinship, the gate, a link to the exposed people."""
  a = metrics.get('attacks')
  if not a:
    return ''
  fmt = lambda v: '–' if v is None else f'{v:.3f}'
  rows = ''.join(
    f'<tr><td>{name}</td><td>{fmt(a[name]["auc"])} ± {fmt(a[name]["auc_se"])}</td>'
    + ''.join(f'<td>{fmt(a[name][f"tpr_at_fpr_{f:g}"])}</td>' for f in FPRS)
    + '</tr>'
    for name in ATTACKS
  )
  k = a['kinship']
  kin_rows = ''.join(
    f'<tr><td>{side} ({k[side]["people"]})</td>'
    + ''.join(f'<td>{k[side][f"with_{d}"]}</td>' for d, _ in kinship.DEGREES)
    + '</tr>'
    for side in ('holdout', 'synthetic')
  )
  gate = a.get('gate') or {}
  gate_text = 'release gate: ' + (
    f'{gate.get("replaced_people", 0)} synthetic people replaced '
    f'({html.escape(json.dumps(gate.get("dropped_first_screen", {})))}); '
    f'{html.escape(gate.get("distance_rule", ""))}; {html.escape(gate.get("kinship_rule", ""))}'
    if gate.get('enabled')
    else 'off'
  )
  return (
    f'<h2>Membership attacks ({a["num_members"]} members vs {a["num_non_members"]} '
    'held-out non-members, reference: the other held-out people)</h2>'
    '<table><tr><th>attack</th><th>AUC ± SE</th><th>TPR @ FPR 1 %</th>'
    f'<th>TPR @ FPR 0.1 %</th></tr>{rows}</table>'
    f'<p>Most exposed training people (by ID): <a href="{EXPOSED_FILE}">{EXPOSED_FILE}</a></p>'
    f'<h3>KING relatives in train ({k["autosomal_snps"]} autosomal SNPs'
    + (f' spanning {k["span_mb"]:.1f} Mb' if k.get('span_mb') is not None else '')
    + '; held-out people are the reference: real cohorts contain relatives)</h3>'
    '<table><tr><th>people</th>'
    + ''.join(f'<th>{d}</th>' for d, _ in kinship.DEGREES)
    + f'</tr>{kin_rows}</table><p>{gate_text}</p>'
  )
