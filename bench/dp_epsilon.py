"""Fidelity and privacy of the ar generator against its DP epsilon: a table and a plot.

  .venv/bin/python bench/dp_epsilon.py W_nodp W_eps1 W_eps3 ... [--plot=docs/dp_epsilon.png]

Each W is a finished workdir (train, sample, evaluate) of the same cohort and held-out split;
the DP ones trained with --config.ar.dp.enabled=True (W/checkpoints/ar/fit.json has `dp`), the
one without `dp` is the non-DP default. Prints one markdown row per workdir (epsilon, noise
multiplier, the fit's seconds and its ratio to the non-DP fit's, the key metrics of
W/report/metrics.json) and the mosaic rows of the non-DP run; plots epsilon against LD r² corr,
detection AUC and genotype membership AUC, with the non-DP default and the mosaics as lines.
"""

from __future__ import annotations

import argparse
import json
import math
import os

# (header, path in a method's metrics)
METRICS = (
  ('LD r² corr', ('realism', 'ld_r2_corr')),
  ('detection AUC', ('realism', 'detection_auc')),
  ('membership AUC geno', ('privacy', 'genotype', 'mia_auc')),
  ('membership AUC emb', ('privacy', 'embedding', 'mia_auc')),
  ('recovery min', ('utility', 'recovery_min')),
  ('val log-lik / seq', None),
)
PLOTTED = METRICS[:3]


def _get(d, path):
  for k in path:
    if not isinstance(d, dict) or k not in d:
      return None
    d = d[k]
  return d


def load(workdir: str) -> dict:
  """{'dp', 'fit_s', 'val_ll', 'metrics'} of a finished workdir."""
  with open(os.path.join(workdir, 'checkpoints', 'ar', 'fit.json')) as f:
    fit = json.load(f)
  with open(os.path.join(workdir, 'report', 'metrics.json')) as f:
    metrics = json.load(f)
  chosen = [c for c in fit['candidates'] if c['context_snps'] == fit['context_snps']][0]
  return {
    'dp': fit.get('dp'),
    'fit_s': sum(c['wall_s'] for c in fit['candidates']),  # every candidate context fit
    'val_ll': chosen.get('val_log_likelihood'),
    'context': fit['context_snps'],
    'metrics': metrics,
  }


def _fmt(v) -> str:
  return '–' if v is None else f'{v:.3f}'


def table(runs: list[dict]) -> str:
  base = next((r for r in runs if r['dp'] is None), None)
  head = '| epsilon (delta) | sigma | context | fit s (ratio) | '
  out = [head + ' | '.join(h for h, _ in METRICS) + ' |', '|---' * (4 + len(METRICS)) + '|']
  for r in sorted(runs, key=lambda r: (_epsilon(r), r['dp'] is None)):
    dp = r['dp']
    eps = 'non-DP (L-BFGS)' if dp is None else f'{dp["epsilon"]:.3g} ({dp["delta"]:.1e})'
    sigma = '–' if dp is None else f'{dp["noise_multiplier"]:.3f}'
    ratio = f' ({r["fit_s"] / base["fit_s"]:.2f}x)' if base else ''
    g = r['metrics']['methods']['gdiff']
    cells = [_fmt(_get(g, p)) if p else _fmt(r['val_ll']) for _, p in METRICS]
    row = f'| {eps} | {sigma} | {r["context"]} | {r["fit_s"]:.0f}{ratio} | '
    out.append(row + ' | '.join(cells) + ' |')
  if base:
    for name in _mosaics(base):
      m = base['metrics']['methods'][name]
      cells = [_fmt(_get(m, p)) if p else '–' for _, p in METRICS]
      out.append(f'| {name} | – | – | – | ' + ' | '.join(cells) + ' |')
  return '\n'.join(out)


def _mosaics(run: dict) -> list[str]:
  """The mosaic rows of a run's report, by segment length."""
  names = (k for k in run['metrics']['methods'] if k.startswith('mosaic'))
  return sorted(names, key=lambda k: float(k.split('@')[1]))


def _epsilon(run: dict) -> float:
  return math.inf if run['dp'] is None else float(run['dp']['epsilon'])


def plot(runs: list[dict], path: str) -> None:
  import matplotlib

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  dp_runs = sorted((r for r in runs if r['dp'] is not None), key=_epsilon)
  finite = [_epsilon(r) for r in dp_runs if math.isfinite(_epsilon(r))]
  inf_x = 3 * max(finite) if finite else 1.0  # where 'no noise' is drawn
  base = next((r for r in runs if r['dp'] is None), None)
  fig, axes = plt.subplots(1, len(PLOTTED), figsize=(4.2 * len(PLOTTED), 3.4))
  for ax, (name, p) in zip(axes, PLOTTED):
    xs = [_epsilon(r) if math.isfinite(_epsilon(r)) else inf_x for r in dp_runs]
    ys = [_get(r['metrics']['methods']['gdiff'], p) for r in dp_runs]
    ax.plot(xs, ys, 'o-', color='tab:red', label='gdiff ar, DP-Adam')
    if base:
      ax.axhline(
        _get(base['metrics']['methods']['gdiff'], p), color='tab:red', ls='--', label='non-DP'
      )
      for i, k in enumerate(_mosaics(base)):
        v = _get(base['metrics']['methods'][k], p)
        ax.axhline(v, color='grey', ls=':', lw=1)
        ax.annotate(k, (ax.get_xlim()[0] if i % 2 else inf_x, v), fontsize=7, color='grey')
    ax.set_xscale('log')
    ticks = finite + [inf_x]
    ax.set_xticks(ticks, [f'{t:g}' for t in finite] + ['∞'])
    ax.minorticks_off()
    ax.set_xlabel('ε (δ = 1 / (10 n))')
    ax.set_title(name)
  axes[0].legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('workdirs', nargs='+')
  parser.add_argument('--plot', default='')
  args = parser.parse_args()
  runs = [load(w) for w in args.workdirs]
  print(table(runs))
  if args.plot:
    plot(runs, args.plot)
    print(f'\nwrote {args.plot}')


if __name__ == '__main__':
  main()
