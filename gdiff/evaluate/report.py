"""Targets, the paper's numbers, pass/fail checks and the written report.

`write(report_dir, metrics, curves)` produces metrics.json, report.html (self-
contained: tables plus base64 PNG plots, also saved as *.png) and report.md (a
short summary for the README). Plots use matplotlib's Agg backend. Metric keys
say `holdout` for the held-out split; the title, tables and plots show its
display name (`protocol.held_out(metrics)`, 'test' or 'val').

The mosaic curve: the rows named `mosaic@<segment SNPs>` ordered by membership AUC;
`dominance(methods)` reads the curve at gdiff's membership AUC (linear interpolation)
and says whether gdiff beats it on each of `CURVE_AXES`.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os

import numpy as np

from gdiff.evaluate import attacks, genome, protocol

# The paper's own numbers (Kenneweg et al. 2025, Bioinformatics): accuracy (%) on the
# real test set of classifiers trained on real data and on MLP+CNN synthetic data.
PAPER = {
  'recovery': {
    'ALS': {
      'mlp': {'real': 87.60, 'synthetic': 82.57, 'recovery': 0.9426},
      'transformer': {'real': 82.11, 'synthetic': 77.09, 'recovery': 0.9389},
      'cnn': {'real': 73.17, 'synthetic': 68.17, 'recovery': 0.9317},
    },
    '1KG': {
      'mlp': {'real': 90.23, 'synthetic': 83.98, 'recovery': 0.9302},
      'transformer': {'real': 74.61, 'synthetic': 63.41, 'recovery': 0.8498},
      'cnn': {'real': 77.34, 'synthetic': 59.99, 'recovery': 0.7754},
    },
  },
  'nnaa_aa_ts': {'ALS': {'test': 0.71, 'train': 0.66}, '1KG': {'test': 0.79, 'train': 0.56}},
  'augmentation_5pct': {
    'ALS': {'real_only': 70.96, 'real_plus_synthetic': 84.83},
    '1KG': {'real_only': 29.01, 'real_plus_synthetic': 83.98},
  },
}

# (metric path in a method's results, short name, comparison, target). The key table;
# '{holdout}' in a name is the held-out split's display name (`protocol.named`).
TARGETS = (
  ('utility.recovery_min', 'recovery (min)', '>=', 0.95),
  ('utility_hard_pair.recovery_min', 'recovery hard pair (min)', '>=', 0.95),
  ('privacy.embedding.aa_truth_holdout', 'AA_truth {holdout}', 'within', (0.4, 0.6)),
  ('privacy.embedding.aa_syn_holdout', 'AA_syn {holdout}', 'within', (0.4, 0.6)),
  ('privacy.embedding.aa_truth_train', 'AA_truth train', 'within', (0.4, 0.6)),
  ('privacy.embedding.aa_syn_train', 'AA_syn train', 'within', (0.4, 0.6)),
  ('privacy.embedding.privacy_loss', 'privacy loss', '<=', 0.02),
  ('privacy.embedding.mia_auc', 'MIA AUC emb', '<=', 0.55),
  ('privacy.genotype.mia_auc', 'MIA AUC geno', '<=', 0.55),
  ('privacy.genotype.identical_copies', 'identical copies', '==', 0),
  ('privacy.genotype.dcr_share_below_holdout_p5', 'DCR < {holdout} p5', 'dcr', 0.05),
  ('realism.af_r', 'AF r', '>=', 0.99),
  ('realism.ld_r2_corr', 'LD r² corr', '>=', 0.97),
  ('realism.pca_two_sample_auc', 'PCA 2-sample AUC', '<=', 0.55),
  ('realism.detection_auc', 'detection AUC', '<=', 0.60),
)

CURVE_PREFIX = 'mosaic@'  # the rows of the mosaic curve
CURVE_X = ('privacy.genotype.mia_auc', 'membership AUC geno')
# (path, name, better): gdiff against the curve at gdiff's membership AUC. 'nearer 0.5': an
# NNAA share is ideal at 0.5 and wrong on either side (too far from, too near to real people).
# 'lower, chance 0.5': a detector's held-out AUC below 0.5 is chance, not a worse cohort (real
# vs real gives 0.488 on ALS), so values at or below 0.5 compare as 0.5 (a tie when both are).
CURVE_AXES = (
  ('realism.ld_r2_corr', 'LD r² corr', 'higher'),
  ('privacy.embedding.aa_truth_holdout', 'AA_truth {holdout}', 'nearer 0.5'),
  ('realism.detection_auc', 'detection AUC', 'lower, chance 0.5'),
)


def lookup(results: dict, path: str):
  node = results
  for part in path.split('.'):
    if not isinstance(node, dict) or part not in node:
      return None
    node = node[part]
  return node


def _dcr_limit(target: float, n: int) -> float:
  # A generator that samples the real distribution puts ~5% of people below the
  # held-out 5th percentile; allow two binomial standard errors of sampling noise.
  return target + 2 * math.sqrt(target * (1 - target) / max(n, 1))


def check(results: dict, path: str, op: str, target) -> bool | None:
  """Whether one metric meets its target (None when it was not computed or is NaN)."""
  value = lookup(results, path)
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return None
  if op == '>=':
    return bool(value >= target)
  if op == '<=':
    return bool(value <= target)
  if op == '==':
    return bool(value == target)
  if op == 'within':
    return bool(target[0] <= value <= target[1])
  if op == 'dcr':
    n = lookup(results, 'privacy.genotype.num_synthetic') or 1
    return bool(value <= _dcr_limit(target, n))
  raise ValueError(f'unknown comparison {op!r}')


def checks(methods: dict) -> dict:
  return {
    m: {path: check(r, path, op, t) for path, _, op, t in TARGETS} for m, r in methods.items()
  }


def _finite(value) -> bool:
  return isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value)


def curve_rows(methods: dict) -> list[tuple[float, str]]:
  """(segment SNPs, row name) of the mosaic curve's rows, by segment length."""
  rows = []
  for name in methods:
    if name.startswith(CURVE_PREFIX):
      try:
        rows.append((float(name[len(CURVE_PREFIX) :]), name))
      except ValueError:
        continue
  return sorted(rows)


def curve_at(methods: dict, x: float, path: str) -> float | None:
  """The mosaic curve's `path` at membership AUC `x`: linear along the curve's points
  sorted by membership AUC, the end point's value beyond an end (None: < 1 point)."""
  points = sorted(
    (lookup(methods[n], CURVE_X[0]), lookup(methods[n], path)) for _, n in curve_rows(methods)
  )
  points = [(a, b) for a, b in points if _finite(a) and _finite(b)]
  if not points:
    return None
  xs, ys = zip(*points)
  return float(np.interp(x, xs, ys))


# better -> (value -> badness): lower badness wins.
_BADNESS = {
  'higher': lambda v: -v,
  'nearer 0.5': lambda v: abs(v - 0.5),
  'lower, chance 0.5': lambda v: max(v, 0.5),
}


def _outcome(op: str, mine: float, theirs: float) -> str:
  """'beats', 'ties' or 'loses': `mine` against `theirs` on an axis whose `better` is `op`."""
  a, b = _BADNESS[op](mine), _BADNESS[op](theirs)
  return 'beats' if a < b else 'ties' if a == b else 'loses'


def dominance(methods: dict, method: str = 'gdiff') -> dict | None:
  """`method` against the mosaic curve at its membership AUC (None: no curve or no AUC).

  Returns:
    {'mia_auc', 'position' ('inside' the curve's range of membership AUC, 'below' it:
    more private than every mosaic, 'above': less private, where the curve's end
    flatters `method`), 'axes': {path: {'name', 'value', 'curve', 'better', 'outcome'
    ('beats' | 'ties' | 'loses' | None: n/a)}}, 'dominates': no axis lost or n/a, at least
    one beaten, and not 'above'}.
  """
  x = lookup(methods.get(method, {}), CURVE_X[0])
  xs = [lookup(methods[n], CURVE_X[0]) for _, n in curve_rows(methods)]
  xs = [v for v in xs if _finite(v)]
  if not _finite(x) or not xs:
    return None
  position = 'below' if x < min(xs) else 'above' if x > max(xs) else 'inside'
  axes = {}
  for path, name, better in CURVE_AXES:
    value, curve = lookup(methods[method], path), curve_at(methods, x, path)
    outcome = _outcome(better, value, curve) if _finite(value) and curve is not None else None
    axes[path] = {
      'name': name,
      'value': value,
      'curve': curve,
      'better': better,
      'outcome': outcome,
    }
  outcomes = [a['outcome'] for a in axes.values()]
  return {
    'method': method,
    'mia_auc': float(x),
    'position': position,
    'axes': axes,
    'dominates': position != 'above'
    and all(o in ('beats', 'ties') for o in outcomes)
    and 'beats' in outcomes,
  }


def dominance_line(dom: dict | None, holdout: str) -> str:
  """report.md's one line on gdiff against the mosaic curve."""
  if dom is None:
    return 'Mosaic curve: not computed (no mosaic@ rows or no genotype membership AUC).'
  where = {
    'inside': '',
    'below': " (more private than every mosaic: the curve's most private end)",
    'above': " (less private than every mosaic: the curve's most "
    'faithful end, which flatters gdiff)',
  }[dom['position']]
  parts = []
  for a in dom['axes'].values():
    verdict = a['outcome'] or 'n/a'
    parts.append(
      f'{protocol.named(a["name"], holdout)} {_fmt(a["value"])} vs '
      f'{_fmt(a["curve"])} ({a["better"]}: {verdict})'
    )
  head = 'dominates' if dom['dominates'] else 'does not dominate'
  return (
    f"Mosaic curve: {dom['method']} {head} it. At {dom['method']}'s "
    f'{CURVE_X[1]} {dom["mia_auc"]:.3f}{where}, {dom["method"]} vs the curve: '
    + '; '.join(parts)
    + '.'
  )


def _target_text(op: str, target) -> str:
  if op == 'within':
    return f'{target[0]}–{target[1]}'
  if op == 'dcr':
    return f'≤ {target} (+noise)'
  return {'>=': '≥ ', '<=': '≤ ', '==': '= '}[op] + str(target)


def _fmt(value) -> str:
  if value is None:
    return '–'
  if isinstance(value, (int, np.integer)):
    return str(int(value))
  if isinstance(value, float) and math.isnan(value):
    return 'nan'
  return f'{value:.3f}'


def _mark(ok) -> str:
  return {True: '✓', False: '✗', None: ''}[ok]


def _value_text(results: dict, path: str) -> str:
  """A metric, with ± its standard error where the results hold one (`<path>_se`)."""
  value, se = lookup(results, path), lookup(results, path + '_se')
  return _fmt(value) + (f' ± {se:.3f}' if _finite(se) and value is not None else '')


# ----------------------------------------------------------------- plots
def _figures(metrics: dict, curves: dict) -> dict:
  """name -> PNG bytes."""
  held = protocol.held_out(metrics)
  import matplotlib

  matplotlib.use('Agg')
  from matplotlib import pyplot as plt

  methods = list(metrics['methods'])
  figs = {}

  def save(fig, name):
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=90, bbox_inches='tight')
    plt.close(fig)
    figs[name] = buf.getvalue()

  real = curves.get('real', {})
  cols = max(len(methods), 1)
  if 'pcs_train' in real:
    fig, axes = plt.subplots(1, cols, figsize=(3.2 * cols, 3.2), squeeze=False)
    for ax, m in zip(axes[0], methods):
      ax.scatter(*real['pcs_train'][:, :2].T, s=4, c='0.7', label='real train')
      ax.scatter(*real['pcs_holdout'][:, :2].T, s=4, c='tab:blue', label=f'real {held.name}')
      pcs = curves[m]['pcs']
      ax.scatter(*pcs[:, :2].T, s=4, c='tab:red', alpha=0.6, label='synthetic')
      ax.set_title(m)
      ax.set_xlabel('PC1')
    axes[0, 0].set_ylabel('PC2')
    axes[0, 0].legend(fontsize=7, markerscale=2)
    save(fig, 'pca')

  if 'ld_decay_train' in real:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    lags = np.arange(1, len(real['ld_decay_train']) + 1)
    ax.plot(lags, real['ld_decay_train'], 'k-', lw=2, label='real train')
    ax.plot(lags, real['ld_decay_holdout'], 'k--', lw=1, label=f'real {held.name}')
    for m in methods:
      ax.plot(lags, curves[m]['ld_decay'], label=m)
    ax.set_xlabel('distance (SNPs)')
    ax.set_ylabel('mean r²')
    ax.legend(fontsize=7)
    save(fig, 'ld_decay')

  if 'ld_distance_train' in real:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    mid = real['ld_distance_bp']  # the mean distance of the bin's pairs
    _line(ax, mid, real['ld_distance_train'], 'k-', lw=2, label='real train')
    _line(ax, mid, real['ld_distance_holdout'], 'k--', lw=1, label=f'real {held.name}')
    for m in methods:
      _line(ax, mid, curves[m]['ld_distance'], marker='.', label=m)
    ax.set_xscale('log')
    ax.set_xlabel('distance (bp)')
    ax.set_ylabel('mean r²')
    ax.legend(fontsize=7)
    save(fig, 'ld_distance')

  if 'ld_maf_train' in real:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    edges = real['ld_maf_edges']
    labels = [f'[{a:g}, {b:g})' for a, b in zip(edges[:-1], edges[1:])]
    at = np.arange(len(labels))
    _line(ax, at, real['ld_maf_train'], 'k-', lw=2, marker='o', label='real train')
    _line(ax, at, real['ld_maf_holdout'], 'k--', lw=1, marker='o', label=f'real {held.name}')
    for m in methods:
      _line(ax, at, curves[m]['ld_maf'], marker='.', label=m)
    ax.set_xticks(at, labels)
    ax.set_xlabel('minor-allele frequency of the pair (lower of the two, real train)')
    ax.set_ylabel('mean r²')
    ax.legend(fontsize=7)
    save(fig, 'ld_maf')

  if curve_rows(metrics['methods']):
    save(_curve_figure(plt, metrics), 'mosaic_curve')

  if 'af_train' in real:
    fig, axes = plt.subplots(1, cols, figsize=(3.2 * cols, 3.2), squeeze=False)
    for ax, m in zip(axes[0], methods):
      ax.scatter(real['af_train'], curves[m]['af'], s=2, alpha=0.5)
      ax.plot([0, 1], [0, 1], 'k-', lw=0.5)
      ax.set_title(m)
      ax.set_xlabel('AF real train')
    axes[0, 0].set_ylabel('AF synthetic')
    save(fig, 'af_scatter')

  if 'dcr_holdout' in real:
    fig, axes = plt.subplots(1, cols, figsize=(3.2 * cols, 3.0), squeeze=False)
    for ax, m in zip(axes[0], methods):
      d = curves[m]['dcr']
      bins = np.linspace(0, max(d.max(), real['dcr_holdout'].max()) + 1e-9, 30)
      ax.hist(real['dcr_holdout'], bins, density=True, alpha=0.5, label=f'{held.name}→train')
      ax.hist(d, bins, density=True, alpha=0.5, label='synthetic→train')
      ax.set_title(m)
      ax.set_xlabel('Hamming distance')
    axes[0, 0].legend(fontsize=7)
    save(fig, 'dcr')

  if 'het_train' in real:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    bins = np.linspace(
      0, max(max(curves[m]['het'].max() for m in methods), real['het_train'].max()) + 1e-9, 40
    )
    ax.hist(
      real['het_train'], bins, density=True, histtype='step', color='k', lw=2, label='real train'
    )
    for m in methods:
      ax.hist(curves[m]['het'], bins, density=True, histtype='step', label=m)
    ax.set_xlabel('heterozygous share of SNPs per person')
    ax.legend(fontsize=7)
    save(fig, 'heterozygosity')

  aug = metrics.get('augmentation')
  if aug:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    f = aug['fractions']
    for key, label in (('real_only', 'real only'), ('real_plus_synthetic', 'real + synthetic')):
      mean = [p['mean'] for p in aug[key]]
      sd = [p['sd'] for p in aug[key]]
      ax.errorbar(f, mean, yerr=sd, marker='o', capsize=3, label=label)
    ax.set_xscale('log')
    ax.set_xticks(f, [f'{x:g}' for x in f])
    ax.minorticks_off()
    ax.set_xlabel('fraction of real train')
    ax.set_ylabel(f'accuracy on {held.reported_on}')
    ax.set_title(f'augmentation ({aug["classifier"]})')
    ax.legend(fontsize=7)
    save(fig, 'augmentation')
  return figs


def _line(ax, x, y, *args, **kwargs) -> None:
  """ax.plot of the finite points only (an empty bin is NaN), so the line stays joined."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  ok = np.isfinite(x) & np.isfinite(y)
  ax.plot(x[ok], y[ok], *args, **kwargs)


def _curve_figure(plt, metrics: dict):
  """The mosaic curve (line, by segment length) and every other row (points), in the
  planes of CURVE_X against each of CURVE_AXES."""
  held = protocol.held_out(metrics).name
  methods = metrics['methods']
  curve = [n for _, n in curve_rows(methods)]
  fig, axes = plt.subplots(1, len(CURVE_AXES), figsize=(4.2 * len(CURVE_AXES), 3.8), squeeze=False)
  for ax, (path, name, better) in zip(axes[0], CURVE_AXES):
    pts = [(lookup(methods[n], CURVE_X[0]), lookup(methods[n], path), n) for n in curve]
    pts = sorted(p for p in pts if _finite(p[0]) and _finite(p[1]))
    if pts:
      ax.plot(
        [p[0] for p in pts],
        [p[1] for p in pts],
        '-',
        color='0.5',
        marker='s',
        ms=4,
        label='mosaic curve',
      )
      for x, y, n in pts:
        ax.annotate(
          n[len(CURVE_PREFIX) :],
          (x, y),
          fontsize=7,
          xytext=(3, -8),
          textcoords='offset points',
          color='0.4',
        )
    for m, r in methods.items():
      x, y = lookup(r, CURVE_X[0]), lookup(r, path)
      if m in curve or not (_finite(x) and _finite(y)):
        continue
      ax.scatter(
        x,
        y,
        s=50 if m == 'gdiff' else 25,
        zorder=3,
        color='tab:red' if m == 'gdiff' else None,
        label=m,
      )
    for p, _, op, t in TARGETS:
      if p == path and op in ('<=', '>='):
        ax.axhline(t, color='grey', ls='--', lw=0.8)
      elif p == path and op == 'within':
        ax.axhspan(*t, color='grey', alpha=0.1, lw=0)
    ax.axvline(next(t for p, _, _, t in TARGETS if p == CURVE_X[0]), color='grey', ls='--', lw=0.8)
    ax.set_xlabel(CURVE_X[1])
    ax.set_ylabel(protocol.named(name, held))
    ax.set_title(f'better: {better}', fontsize=8)
  axes[0, 0].legend(fontsize=7)
  fig.suptitle(f'gdiff against the mosaic curve (segment SNPs), held out: {held}', fontsize=10)
  fig.tight_layout()
  return fig


def ld_curves(curves: dict, methods) -> dict:
  """The LD-by-distance and LD-by-MAF curves for metrics.json: bin edges, mean r² per bin
  and row, and the mean distance (bp) of each distance bin's pairs."""
  real = curves.get('real', {})
  out = {}
  for curve, edges in (('ld_distance', 'ld_distance_edges'), ('ld_maf', 'ld_maf_edges')):
    if f'{curve}_train' not in real:
      continue
    rows = {'real train': real[f'{curve}_train'], 'real holdout': real[f'{curve}_holdout']}
    rows.update({m: curves[m][curve] for m in methods if curve in curves.get(m, {})})
    out[curve] = {
      'edges': np.asarray(real[edges]).tolist(),
      'mean_r2': {m: _finite_list(c) for m, c in rows.items()},
    }
  if 'ld_distance' in out:
    out['ld_distance']['mean_bp'] = _finite_list(real['ld_distance_bp'])
  return out


def _finite_list(values) -> list:
  """A JSON list, None for NaN (an empty bin)."""
  return [float(v) if math.isfinite(v) else None for v in np.asarray(values, np.float64)]


# ----------------------------------------------------------------- tables
def _key_rows(metrics: dict):
  held = protocol.held_out(metrics).name
  header = ['method'] + [
    f'{protocol.named(name, held)} [{_target_text(op, t)}]' for _, name, op, t in TARGETS
  ]
  rows = []
  for m, r in metrics['methods'].items():
    ok = metrics['checks'][m]
    rows.append([m] + [f'{_value_text(r, p)} {_mark(ok[p])}'.strip() for p, *_ in TARGETS])
  ref = metrics.get('reference', {})
  if ref:
    rows.append([f'real {held} (reference)'] + [_value_text(ref, p) for p, *_ in TARGETS])
  return header, rows


def _utility_rows(metrics: dict, section: str = 'utility'):
  header = [
    'method',
    'classifier',
    'acc real',
    'acc synthetic',
    'recovery',
    'bal. acc real',
    'bal. acc synthetic',
  ]
  rows = []
  for m, r in metrics['methods'].items():
    for clf, u in r.get(section, {}).items():
      if not isinstance(u, dict) or 'recovery' not in u:
        continue
      pm = lambda d: f'{d["mean"]:.3f} ± {d["sd"]:.3f}'
      rows.append(
        [
          m,
          clf,
          pm(u['acc_real']),
          pm(u['acc_syn']),
          pm(u['recovery']),
          pm(u['balanced_acc_real']),
          pm(u['balanced_acc_syn']),
        ]
      )
  return header, rows


def _genotype_utility_rows(metrics: dict):
  """scikit-learn classifiers on genotypes, one run each (deterministic): no ± sd."""
  header = ['method', 'classifier', 'acc real', 'acc synthetic', 'recovery', 'bal. acc synthetic']
  rows = []
  for m, r in metrics['methods'].items():
    for clf, u in r.get('utility_genotype', {}).items():
      if isinstance(u, dict):
        rows.append(
          [m, clf] + [_fmt(u[k]) for k in ('acc_real', 'acc_syn', 'recovery', 'balanced_acc_syn')]
        )
  return header, rows


GWAS_COLUMNS = ('direction_agreement', 'spearman_log10p', 'lambda_gc', 'num_hits')


def _gwas_rows(metrics: dict):
  header = ['method', 'direction agreement', 'Spearman −log10 p', 'λGC', 'hits']
  rows = [
    [m] + [_fmt(r['gwas'].get(k)) for k in GWAS_COLUMNS]
    for m, r in metrics['methods'].items()
    if r.get('gwas')
  ]
  ref = metrics.get('reference', {}).get('gwas')
  if ref:
    held = protocol.held_out(metrics).name
    rows.append([f'real {held} (reference)'] + [_fmt(ref.get(k)) for k in GWAS_COLUMNS])
  return header, rows


def _gwas_text(metrics: dict) -> str:
  """The line above the GWAS table (or instead of it, when skipped)."""
  if metrics.get('gwas_skipped'):
    return f'GWAS concordance: skipped ({metrics["gwas_skipped"]}).'
  real = next((r['gwas'] for r in metrics['methods'].values() if r.get('gwas')), None)
  if real is None:
    return ''
  return (
    f'GWAS concordance (plink2 --glm, firth-fallback, no covariates) at the real-train top '
    f'hits (p < {real["hit_p"]:g}: {real["num_real_p_below"]}; at least the '
    f'{real["num_hits"]} smallest p); real-train λGC {_fmt(real["lambda_gc_real_train"])}.'
  )


def _flat_rows(metrics: dict, section: str):
  keys = []
  for r in metrics['methods'].values():
    for k, v in (lookup(r, section) or {}).items():
      if k not in keys and not isinstance(v, dict):  # nested: own tables (realism.genome)
        keys.append(k)
  rows = [
    [m] + [_fmt(lookup(r, f'{section}.{k}')) for k in keys] for m, r in metrics['methods'].items()
  ]
  ref = lookup(metrics.get('reference', {}), section)
  if ref:
    rows.append(
      [f'real {protocol.held_out(metrics).name} (reference)'] + [_fmt(ref.get(k)) for k in keys]
    )
  return ['method'] + keys, rows


def _html_table(header, rows) -> str:
  head = ''.join(f'<th>{html.escape(h)}</th>' for h in header)
  body = ''.join(
    '<tr>' + ''.join(f'<td>{html.escape(str(c))}</td>' for c in row) + '</tr>' for row in rows
  )
  return f'<table><tr>{head}</tr>{body}</table>'


def _md_table(header, rows) -> str:
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
  return '\n'.join(lines)


_CSS = (
  'body{font-family:sans-serif;max-width:1400px;margin:2em auto;font-size:14px}'
  'table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;'
  'padding:3px 6px;text-align:right}th{background:#eee}td:first-child{text-align:left}'
  '.warn{color:#a60}figcaption{max-width:900px;font-size:13px;color:#333}'
)


def _json_default(value):
  if isinstance(value, np.ndarray):
    return value.tolist()
  if isinstance(value, np.generic):
    return value.item()
  raise TypeError(f'not JSON serialisable: {type(value)}')


def write(report_dir: str, metrics: dict, curves: dict, extra_files: dict | None = None) -> dict:
  """Writes metrics.json, report.html, report.md and *.png into `report_dir`; their paths.

  Adds metrics['verdict'] and metrics['warnings'] (`verdict`) first, so keys put into
  `metrics` before this call (`dp`, `gate`) are said in the verdict. `extra_files`: name
  -> text written next to them (config.json). The files go to a temporary folder that
  replaces `report_dir` when complete (`gdiff.workdir.replacing`: a folder gdiff did not
  write is refused, never replaced).
  """
  from gdiff import workdir as wd  # the workdir owns replacing a folder
  from gdiff.evaluate import verdict  # reads this module's targets

  metrics['verdict'] = verdict.verdict(metrics)
  metrics['privacy_verdict'] = verdict.privacy_verdict(metrics)
  metrics['warnings'] = verdict.warnings(metrics)
  with wd.replacing(report_dir) as tmp:
    paths = _write_files(tmp, metrics, curves)
    for name, text in (extra_files or {}).items():
      with open(os.path.join(tmp, name), 'w') as f:
        f.write(text)
  return {key: os.path.join(report_dir, os.path.basename(p)) for key, p in paths.items()}


def _warning_lines(metrics: dict, section: str) -> list[str]:
  return [f'⚠ {w}' for w in metrics.get('warnings', {}).get(section, [])]


def _html_warnings(metrics: dict, section: str) -> str:
  return ''.join(f'<p class="warn">{html.escape(w)}</p>' for w in _warning_lines(metrics, section))


def _md_warnings(metrics: dict, section: str) -> list[str]:
  lines = _warning_lines(metrics, section)
  return [f'> {w}' for w in lines] + [''] if lines else []


def _write_files(report_dir: str, metrics: dict, curves: dict) -> dict:
  """Writes metrics.json, report.html, report.md and *.png; returns their paths."""
  from gdiff.evaluate import glossary, provenance

  os.makedirs(report_dir, exist_ok=True)
  paths = {
    'metrics': os.path.join(report_dir, 'metrics.json'),
    'html': os.path.join(report_dir, 'report.html'),
    'markdown': os.path.join(report_dir, 'report.md'),
  }
  with open(paths['metrics'], 'w') as f:
    json.dump(metrics, f, indent=1, default=_json_default)
  figs = _figures(metrics, curves)
  for name, png in figs.items():
    with open(os.path.join(report_dir, f'{name}.png'), 'wb') as f:
      f.write(png)

  key = _key_rows(metrics)
  notes = metrics.get('notes', [])
  held = protocol.held_out(metrics)
  title = f'gdiff evaluation (held-out split: {held.name})'
  reported_on, chosen_on = held.reported_on, held.chosen_on
  names = (
    ''
    if held.name == 'test'
    else f'Held-out split: {held.name}; the test split was '
    f'not read. Metric names that say "holdout" refer to the held-out split, here '
    f'{held.name}.'
  )
  parts = [
    '<!doctype html><html><head><meta charset="utf-8">',
    f'<title>{html.escape(title)}</title>',
    f'<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>',
    f'<p><b>{html.escape(names)}</b></p>' if names else '',
    f'<h2>Verdict</h2><p>{html.escape(metrics.get("verdict", ""))}</p>',
    f'<p>{html.escape(metrics["privacy_verdict"])}</p>' if metrics.get('privacy_verdict') else '',
    '<h2>Key metrics (target in brackets; ✓ meets it, ✗ misses it)</h2>',
    _html_table(*key),
    _html_warnings(metrics, 'key'),
    f'<h2>Utility (accuracy on {reported_on}; steps chosen on {chosen_on})</h2>',
    f'<p>Majority-class accuracy on {reported_on}: '
    f'{_fmt(metrics.get("majority_acc_holdout"))}'
    f'; hard pair: {html.escape(" vs ".join(metrics.get("hard_pair", [])) or "–")}</p>',
    _html_table(*_utility_rows(metrics)),
    _html_warnings(metrics, 'utility'),
    _html_table(*_utility_rows(metrics, 'utility_hard_pair')) if metrics.get('hard_pair') else '',
    _html_warnings(metrics, 'utility_hard_pair'),
    f'<h3>Utility on genotypes (scikit-learn; accuracy on {reported_on})</h3>',
    _html_table(*_genotype_utility_rows(metrics)),
    _html_warnings(metrics, 'utility_genotype'),
    '<h2>GWAS concordance with real train</h2>',
    f'<p>{html.escape(_gwas_text(metrics))}</p>',
    _html_table(*_gwas_rows(metrics)) if _gwas_rows(metrics)[1] else '',
    _html_warnings(metrics, 'gwas'),
    '<h2>Privacy and diversity, embedding (angular distance)</h2>',
    _html_table(*_flat_rows(metrics, 'privacy.embedding')),
    '<h2>Privacy and diversity, genotypes (Hamming distance)</h2>',
    _html_table(*_flat_rows(metrics, 'privacy.genotype')),
    f'<h2>Genetic realism of decoded genotypes (vs real train; reference: real {held.name})</h2>',
    _html_table(*_flat_rows(metrics, 'realism')),
    f'<p>{html.escape(dominance_line(metrics.get("dominance"), held.name))}</p>',
    genome.html(metrics),
    attacks.report_section(metrics),
  ]
  for name, png in figs.items():
    data = base64.b64encode(png).decode()
    parts.append(
      f'<figure><h3>{name}</h3><img src="data:image/png;base64,{data}">'
      f'<figcaption>{html.escape(glossary.caption(name, held.name))}</figcaption></figure>'
    )
  parts.append(
    '<h2>Glossary</h2><table><tr><th>metric</th><th>what it measures</th><th>good</th>'
    '<th>reference</th></tr>'
    + ''.join(
      '<tr>' + ''.join(f'<td>{html.escape(c)}</td>' for c in row) + '</tr>'
      for row in glossary.GLOSSARY
    )
    + '</table>'
  )
  parts.append(
    '<h2>Protocol</h2><ul>' + ''.join(f'<li>{html.escape(n)}</li>' for n in notes) + '</ul>'
  )
  prov = provenance.lines(metrics.get('provenance', {}))
  parts.append(
    '<h2>Provenance</h2><ul>' + ''.join(f'<li>{html.escape(n)}</li>' for n in prov) + '</ul>'
  )
  parts.append(
    '<h2>The paper (Kenneweg et al. 2025)</h2><pre>'
    + html.escape(json.dumps(metrics.get('paper', PAPER), indent=1))
    + '</pre>'
  )
  parts.append('</body></html>')
  with open(paths['html'], 'w') as f:
    f.write('\n'.join(parts))

  md = (
    [f'## {title}', '']
    + ([names, ''] if names else [])
    + ([f'**Verdict.** {metrics["verdict"]}', ''] if metrics.get('verdict') else [])
    + ([f'**Privacy.** {metrics["privacy_verdict"]}', ''] if metrics.get('privacy_verdict') else [])
    + [_md_table(*key), '']
    + _md_warnings(metrics, 'key')
    + [
      dominance_line(metrics.get('dominance'), held.name),
      '',
      f'Majority-class accuracy on {reported_on}: {_fmt(metrics.get("majority_acc_holdout"))}',
      '',
      _md_table(*_utility_rows(metrics)),
      '',
    ]
    + _md_warnings(metrics, 'utility')
  )
  if metrics.get('hard_pair'):
    md += [
      f'Hard pair ({" vs ".join(metrics["hard_pair"])}):',
      '',
      _md_table(*_utility_rows(metrics, 'utility_hard_pair')),
      '',
    ] + _md_warnings(metrics, 'utility_hard_pair')
  geno = _genotype_utility_rows(metrics)
  if geno[1]:
    md += [f'Utility on genotypes (scikit-learn; accuracy on {reported_on}):', '']
    md += [_md_table(*geno), ''] + _md_warnings(metrics, 'utility_genotype')
  if _gwas_text(metrics):
    md += [_gwas_text(metrics), '']
  if _gwas_rows(metrics)[1]:
    md += [_md_table(*_gwas_rows(metrics)), ''] + _md_warnings(metrics, 'gwas')
  md += genome.markdown(metrics)
  md += [f'- {n}' for n in notes]
  if figs:
    md += ['', '### Figures', '']
    for name in figs:
      md += [f'![{name}]({name}.png)', '', f'*{name}*: {glossary.caption(name, held.name)}', '']
  md += ['### Glossary', '']
  md += [f'- **{n}**: {w}. Good: {good}. Reference: {r}.' for n, w, good, r in glossary.GLOSSARY]
  md += ['', '### Provenance', '']
  md += [f'- {line}' for line in provenance.lines(metrics.get('provenance', {}))]
  with open(paths['markdown'], 'w') as f:
    f.write('\n'.join(md) + '\n')
  return paths
